"""The one Lambda target every function and the dependency layer are built for.

Kept free of CDK imports so that the layer build (``python -m infra.layer``) and the layer ABI
test start in milliseconds instead of waiting for the jsii runtime.
"""

from __future__ import annotations

from typing import Final

#: CPython version of the Lambda runtime (``python3.14``): the newest runtime aws-cdk-lib 2.275
#: offers for which every compiled dependency (pydantic-core, psycopg-binary, hiredis, wrapt,
#: cffi, cryptography) publishes manylinux wheels.
PYTHON_VERSION: Final = "3.14"

#: CPython ABI tag of that version, as pip and extension file names spell it.
CPYTHON_ABI: Final = "cp314"

#: Linux machine name of the one architecture used throughout (Graviton: cheaper per GB-second).
LINUX_ARCH: Final = "aarch64"

#: ELF ``e_machine`` of that architecture (183 = EM_AARCH64, 62 = EM_X86_64).
ELF_MACHINE: Final = 183

#: manylinux tags the runtime accepts, newest first. The python3.12+ runtimes run on Amazon
#: Linux 2023 (glibc 2.34); pip does not widen ``--platform`` to older glibc tags by itself, so
#: every tag a wheel of ours is published under has to be listed.
MANYLINUX_PLATFORMS: Final = (
    f"manylinux_2_34_{LINUX_ARCH}",
    f"manylinux_2_28_{LINUX_ARCH}",
    f"manylinux2014_{LINUX_ARCH}",
)

#: The Powertools service name and metrics namespace the alarms and the dashboard refer to.
SERVICE_NAME: Final = "order-router"
METRICS_NAMESPACE: Final = "OrderRouter"
