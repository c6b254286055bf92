"""deepfake-audio: train, compare and run detectors of synthetic speech."""

#: The one place the version is written; pyproject.toml reads it from here (setuptools'
#: dynamic version), so start-up needs no package-metadata look-up.
__version__ = "0.1.0"
