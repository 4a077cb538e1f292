"""styleblit: example-based real-time stylization of portrait video."""
from setuptools import find_packages, setup

setup(
    name="styleblit",
    version="0.1.0",
    description=(
        "Example-based, real-time portrait video stylization: FaceBlit guides "
        "and a hierarchical StyleBlit patch lookup in Numba"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # mediapipe 0.10.21 has wheels for Python 3.9-3.12 only (on 3.13 pip would
    # try to build numpy 1.x from source before failing)
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["blit", "blit.*", "guides", "guides.*", "gan_distill",
                                    "gan_distill.*"]),
    # the CUDA kernels of blit/gpu.py (compiled by NVRTC at first use)
    package_data={"blit": ["*.cu", "cuda/*.cu", "cuda/*.cuh"]},
    install_requires=[
        "numpy>=1.24,<2",  # mediapipe 0.10.21 is built against NumPy 1.x
        "numba>=0.58",
        # contrib, not opencv-python: mediapipe depends on contrib, and two cv2
        # builds in one environment clash.
        "opencv-contrib-python>=4.8",
        # The last release that ships its face-mesh model inside the wheel, so
        # landmarks run offline.
        "mediapipe==0.10.21",
        # Ships astronaut.png, the public-domain target photo of the embedded
        # demo, and the reference SSIM implementation.
        "scikit-image>=0.22",
        # `styleblit video`: PyAV reads and writes video and copies audio
        # packets unchanged (FFmpeg inside the wheel, libx264 included).
        "av>=12",
        # the progress bar of `styleblit video` (frames, fps, ETA)
        "tqdm>=4",
    ],
    extras_require={
        # The GAN and Ray tests run in CI: torch pinned to the release whose CPU
        # wheel these machines hold locally (a bare "torch" would pull the
        # newest CUDA build, several GB), and ray for the local-cluster tests.
        "test": ["pytest>=7", "torch==2.13.0", "ray>=2.9"],
        # blit.gpu: CuPy 13 (CuPy 14 needs NumPy 2, which mediapipe rules out);
        # it compiles the kernels with NVRTC from the CUDA 12 toolkit.
        "gpu": ["cupy-cuda12x>=13,<14"],
        "gan": ["torch>=2.1"],
        # `--engine ray` and `styleblit batch`: run offline jobs on a Ray cluster
        # ([client]: `--address ray://HOST:PORT`, a remote cluster, needs Ray Client)
        "dist": ["ray[client]>=2.9"],
        # `styleblit webcam --virtual-cam`: send the output to video-call programs
        "virtualcam": ["pyvirtualcam"],
    },
    entry_points={"console_scripts": ["styleblit = blit.cli:main"]},
)
