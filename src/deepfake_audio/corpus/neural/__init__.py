"""A neural vocoder trained on the demo corpus's own real speech, to make neural fakes.

:mod:`.model` is the vocoder (Vocos-style: log-mel in, STFT magnitude and phase out, inverse
STFT), :mod:`.training` trains it for a bounded time (resumable, reused when done) and
:mod:`.report` writes its samples and plots. ``make-demo-corpus --neural`` uses it through
:func:`deepfake_audio.corpus.builder.neural_fakes`.
"""
