"""Write the API's OpenAPI document: ``python -m functions.route_order.openapi``."""

from __future__ import annotations

import json
from pathlib import Path

from functions.route_order.handler import openapi_document

TARGET = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def main() -> None:
    """Regenerate ``docs/openapi.json`` (a test fails when it is out of date)."""
    TARGET.write_text(json.dumps(json.loads(openapi_document()), indent=2, sort_keys=True) + "\n")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
