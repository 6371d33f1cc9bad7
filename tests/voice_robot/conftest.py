"""The web tests' fixtures (app, logged-in admin and registrar) for the robot's pages."""

from web.conftest import (  # noqa: F401
    admin_id,
    admin_web,
    app,
    applier,
    make_user,
    registrar_id,
    registrar_web,
)
