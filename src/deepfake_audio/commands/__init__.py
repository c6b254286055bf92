"""One module per CLI subcommand; each exposes ``register(subparsers)``.

``register`` adds the subcommand's parser and sets ``func`` to a callable taking the parsed
arguments and returning the exit code. Library errors are turned into messages by
:mod:`deepfake_audio.cli`.
"""
