"""The demo corpus: a small Fake-or-Real-shaped corpus built entirely offline.

Real speech comes from recordings packaged in Debian (or a user folder); fakes are made on
the machine by espeak-ng and by vocoder resyntheses of the real clips. See
``docs/demo_corpus.md`` and :func:`deepfake_audio.corpus.builder.build_corpus`.
"""

from deepfake_audio.corpus.errors import CorpusError

#: Corpus sizes: real recordings used (None: all of them). Here, not in the builder, so the
#: command line lists them without importing the synthesis stack.
SIZES: dict[str, int | None] = {"tiny": 40, "small": 300, "full": None}

__all__ = ["SIZES", "CorpusError"]
