"""A source sends the credential its configuration names, and never a ~/.netrc password requests would add."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from etl.sources.azure_devops.client import AdoClient
from etl.sources.github_actions.client import GitHubClient
from etl.sources.jenkins.client import JenkinsClient


@pytest.fixture
def netrc_for_the_server(httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {httpserver.host} login someone password from-netrc\n")
    monkeypatch.setenv("NETRC", str(netrc))
    httpserver.expect_request("/api").respond_with_json({"count": 0, "value": []})
    return httpserver


def sent_authorization(httpserver: HTTPServer) -> list[str | None]:
    return [request.headers.get("Authorization") for request, _ in httpserver.log]


def test_azure_devops_with_auth_none_sends_no_netrc_password(netrc_for_the_server: HTTPServer) -> None:
    client = AdoClient("ado", netrc_for_the_server.url_for("/"), auth="none")
    body, _ = client.get_json(netrc_for_the_server.url_for("/api"))
    assert body == {"count": 0, "value": []}
    assert sent_authorization(netrc_for_the_server) == [None]


def test_github_without_a_token_sends_no_netrc_password(netrc_for_the_server: HTTPServer) -> None:
    body, _ = GitHubClient("gh", netrc_for_the_server.url_for("/")).get_json("/api")
    assert body == {"count": 0, "value": []}
    assert sent_authorization(netrc_for_the_server) == [None]


def test_jenkins_without_a_user_sends_no_netrc_password(netrc_for_the_server: HTTPServer) -> None:
    assert JenkinsClient("ci", netrc_for_the_server.url_for("/"), None, None).json("/api") == {
        "count": 0, "value": []}
    assert sent_authorization(netrc_for_the_server) == [None]


def test_jenkins_with_a_user_sends_that_user_not_the_netrc_one(netrc_for_the_server: HTTPServer) -> None:
    JenkinsClient("ci", netrc_for_the_server.url_for("/"), "bot", "api-token").json("/api")
    assert sent_authorization(netrc_for_the_server) == ["Basic Ym90OmFwaS10b2tlbg=="]
