"""Packaging for `mp`, the companion package of the Machine Perception course."""

from setuptools import find_packages, setup

setup(
    name="mp",
    version="0.1.0",
    description="Machine Perception course companion: each chapter as tested TensorFlow/Keras code.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mp", "mp.*"]),
    install_requires=[
        # TF 2.16 is the first release on Keras 3; 2.20 is the newest release
        # tested together with TensorFlow Probability 0.25.
        "tensorflow>=2.16,<2.21",
        "tensorflow-probability[tf]>=0.24,<0.26",  # [tf] brings tf-keras
        "keras>=3.0,<4",
        "absl-py>=1.0",
        "gymnasium>=1.0,<2",
        "numpy>=1.26,<3",
        "scikit-learn>=1.3",  # the embedded 8x8 digits dataset
        "matplotlib>=3.7",
    ],
    # pytest-xdist: `make test` runs the suite on two processes (most app tests wait on
    # subprocesses, so two cores finish it in well under the 10-minute budget).
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3"], "box2d": ["box2d==2.3.10"]},
)
