"""The event catalogue's documents and its backward-compatibility rules.

* ``asyncapi``: the AsyncAPI 3.0 document of every topic and event, and the JSON Schema of each
  type's data, derived from the catalogue, the topics and the runtime's wire format;
* ``docs``: writes them to ``docs/`` (``pizzeria schemas generate``) and reports drift
  (``pizzeria schemas check``);
* ``compatibility``: how a type may change within its version, and the baselines (each type's
  data schema as first released) it is checked against.
"""

from __future__ import annotations

from contracts.schemas.asyncapi import (
    ASYNCAPI_FILE,
    EVENTS_DIRECTORY,
    GENERATE_COMMAND,
    asyncapi_document,
    catalogue_types,
    json_schema,
    schema_id,
)
from contracts.schemas.compatibility import BASELINES, compatibility_problems
from contracts.schemas.docs import (
    check_docs,
    default_docs_directory,
    generated_files,
    render,
    write_docs,
)

__all__ = [
    "ASYNCAPI_FILE",
    "BASELINES",
    "EVENTS_DIRECTORY",
    "GENERATE_COMMAND",
    "asyncapi_document",
    "catalogue_types",
    "check_docs",
    "compatibility_problems",
    "default_docs_directory",
    "generated_files",
    "json_schema",
    "render",
    "schema_id",
    "write_docs",
]
