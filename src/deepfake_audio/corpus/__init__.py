"""The demo corpus: a small Fake-or-Real-shaped corpus built entirely offline.

Real speech comes from recordings packaged in Debian (or a user folder); fakes are made on
the machine by espeak-ng and by vocoder resyntheses of the real clips. See
``docs/demo_corpus.md`` and :func:`deepfake_audio.corpus.builder.build_corpus`.
"""

from deepfake_audio.corpus.errors import CorpusError

__all__ = ["CorpusError"]
