"""Sphinx configuration of the provider's documentation (``make docs``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Autodoc imports the provider, hence Airflow: give it a throwaway home under _build so the
# build neither reads nor writes ~/airflow, and needs no network or database.
_AIRFLOW_HOME = Path(__file__).resolve().parent / "_build" / "airflow-home"
_AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_aigw import __version__  # noqa: E402

project = "airflow-provider-aigw"
author = "airflow-provider-aigw developers"
copyright = "airflow-provider-aigw developers, Apache License 2.0"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "screenshots"]
html_theme = "alabaster"
html_title = f"Cloudflare AI Gateway provider {release}"
html_static_path = ["_static"]
# Alabaster's default 940px page fits about 70 characters of code, 1160px about 80; aigw.css
# wraps longer lines instead of clipping them behind a scroll bar.
html_theme_options = {"page_width": "1160px"}
html_css_files = ["aigw.css"]

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Signatures carry the types; the descriptions stay in the docstrings' :param: lists.
autodoc_typehints = "signature"
# Airflow's own classes are documented by Airflow, not here.
autodoc_inherit_docstrings = False
