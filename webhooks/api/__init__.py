"""REST API /api/v1 for the МИС: token auth, JSON in and out, an OpenAPI 3.1 document.

Importing the submodules registers their routes and handlers on `bp`.
"""

from flask import Blueprint

bp = Blueprint("api_v1", __name__)

# The route modules import `bp` from here, so they come after it. The order does not matter:
# werkzeug tries errors.py's catch-all route only after every specific route.
from webhooks.api import (  # noqa: E402
    appointments,
    auth,
    catalog,
    employees,
    errors,
    openapi,
    patients,
    sms,
)

__all__ = ["appointments", "auth", "bp", "catalog", "employees", "errors", "openapi", "patients", "sms"]
