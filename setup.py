"""Build hook: the top-level `kql/`, `config/` and `notebooks/` folders ship inside the wheel as `etl/_data/`.

They stay where the repository's layout has them; `etl.resources` finds them in either place. The
metadata lives in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED_FOLDERS = ("kql", "config", "notebooks")  # keep in step with etl.resources.SHIPPED_FOLDERS


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads the folders in place
        for name in SHIPPED_FOLDERS:
            target = Path(self.build_lib) / "etl" / "_data" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(name, target, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))


setup(cmdclass={"build_py": BuildWithData})
