"""stowpair: a dcm4chee-style STOW-RS exporter and a strict stowrsd emulator, as twistd plugins."""

from setuptools import find_packages, setup

setup(
    name="stowpair",
    version="0.1.0",
    description="STOW-RS exporter engine and stowrsd emulator for Twisted",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # twisted.plugins is a namespace folder: it must not get an __init__.py,
    # or installing would overwrite Twisted's own (see docs/development.md).
    packages=find_packages(include=["stowpair", "stowpair.*"]) + ["twisted.plugins"],
    package_data={
        "stowpair": ["py.typed", "db/migrations/*.sql"],
        # the console's files (docs/console.md): no build step, served as they are
        "stowpair.ui": ["static/*.html", "static/*.css", "static/*.svg", "static/js/*.js"],
        "twisted": ["plugins/stowpair_plugin.py"],
    },
    install_requires=[
        "twisted>=24.7.0",
        "treq>=24.9.1",
        "pydicom>=3.0.1",
        "numpy>=1.26",
        "pylibjpeg>=2.0",
        "pylibjpeg-libjpeg>=2.1",
        "pylibjpeg-openjpeg>=2.3",
        "pylibjpeg-rle>=2.0",
        "service-identity>=24.1.0",
        "pyopenssl>=24.2.1",
        "pyjwt[crypto]>=2.8",
        "pynetdicom>=2.1",
        "prometheus-client>=0.20",
        # the PostgreSQL task store and archive index of a cluster (docs/cluster.md)
        "psycopg[binary]>=3.2",
        "psycopg-pool>=3.2",
    ],
    extras_require={
        "test": [
            "pytest>=8.0",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "trustme>=1.1",
            "ruff>=0.6",
            "mypy>=1.11",
            "mypy-zope>=1.0.5",
            "dicomweb-client>=0.59",
            "types-requests",
            # browser tests of the console, with the system Chromium (no browser download)
            "playwright>=1.45",
        ],
        "bench": ["matplotlib>=3.8"],
    },
    entry_points={"console_scripts": ["stowpair = stowpair.cli:main"]},
)
