"""Running the notebooks under pytest (nbval; options in pyproject.toml): a stable kernel environment.

The saved outputs were made in a kernel with Jupyter's inline matplotlib backend and a built font cache;
these hooks give every run the same, so only the notebooks' own results can differ.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The kernel inherits this process's environment. A MPLBACKEND set elsewhere (Agg in some CI images)
# would turn figures into warnings instead of pictures.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"


def pytest_configure(config: pytest.Config) -> None:
    # On a fresh machine matplotlib's first import builds its font cache, and if that takes more than a few
    # seconds it says so on stderr: an output the saved notebook lacks. Build it here, before any kernel.
    import matplotlib.font_manager  # noqa: F401

    # The sanitize file is named relative to the repository root; find it from any working directory.
    sanitize = config.option.nbval_sanitize_with
    if sanitize and not Path(sanitize).exists() and (config.rootpath / sanitize).exists():
        config.option.nbval_sanitize_with = str(config.rootpath / sanitize)
