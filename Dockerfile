# The project's image: the pinned environment (requirements.lock) and this checkout, for MLflow's
# Kubernetes backend (deploy/kubernetes) and any container runner. CPU by default:
#   docker build -t initbench:cpu .
# GPU (NVIDIA; TensorFlow's CUDA wheels): swap the TensorFlow pin at build time (the CPU pin
# goes, however pip spells its name: tensorflow_cpu, tensorflow-cpu):
#   docker build --build-arg TENSORFLOW="tensorflow[and-cuda]==2.21.*" -t initbench:gpu .
# and run with the NVIDIA container toolkit (Kubernetes: resources.limits nvidia.com/gpu: 1).
ARG PYTHON=3.11.7
FROM python:${PYTHON}-slim-bookworm

ARG TENSORFLOW=""
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TF_CPP_MIN_LOG_LEVEL=2
# git: DVC and the provenance tags need the repository; make: the README's commands.
RUN apt-get update && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/initbench
COPY requirements.lock ./
RUN if [ -n "$TENSORFLOW" ]; then \
      grep -viE '^tensorflow[-_.]cpu==' requirements.lock > /tmp/requirements.txt \
      && echo "$TENSORFLOW" >> /tmp/requirements.txt; \
    else cp requirements.lock /tmp/requirements.txt; fi \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt
# The checkout, .git included (DVC and the git-commit tags need it); .dockerignore keeps out data,
# caches and local stores.
COPY . .
RUN pip install --no-deps . && git config --global --add safe.directory /opt/initbench \
    && initbench validate
ENV INITBENCH_ROOT=/opt/initbench
