"""``deepfake-audio serve``: the HTTP API and the page that show where a clip sounds fake.

:mod:`~deepfake_audio.serve.service` holds the models (loaded once) and runs analyses on a
bounded pool of threads; :mod:`~deepfake_audio.serve.upload` streams a multipart upload to
a temporary file, counting; :mod:`~deepfake_audio.serve.app` is the FastAPI application. The
page and the offline API docs are package data under ``static/``.
"""
