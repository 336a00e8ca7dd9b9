"""sparkify: raw music-streaming JSON to an analytics star schema."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sparkify")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
