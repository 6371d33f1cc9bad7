"""Helpers shared by the web and browser tests (imported by conftest and test modules)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from clinic.pbx_port import ApplyResult

ADMIN_PASSWORD = "Adm1n-pass"
REGISTRAR_PASSWORD = "Reg1str-pass"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


class RecordingApplier:
    """Stands in for the PBX port (clinic.pbx_port.PbxApplier): records who asked, when."""

    def __init__(self) -> None:
        self.calls: list[int | None] = []
        self.result = ApplyResult(
            ok=True, message="конфигурация применена, Asterisk перезагружен", revision_id=1
        )
        self.error: Exception | None = None

    def __call__(self, author_id: int | None, *, pending: Mapping[str, object] | None = None) -> ApplyResult:
        self.calls.append(author_id)
        if self.error is not None:
            raise self.error
        return self.result


class Web:
    """A Flask test client that fills CSRF tokens from the form page, as a browser would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, url: str) -> TestResponse:
        return self.client.get(url)

    def post_form(self, url: str, data: dict[str, Any], *, page: str | None = None) -> TestResponse:
        form_page = self.client.get(page or url)
        assert form_page.status_code == 200, form_page.status_code
        return self.client.post(url, data={**data, "csrf_token": csrf_from(form_page.text)})

    def login(self, login: str, password: str) -> TestResponse:
        return self.post_form("/login", {"login": login, "password": password})

    def csrf(self, page: str) -> str:
        return csrf_from(self.text(page))

    def text(self, url: str) -> str:
        response = self.client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response.text
