"""A source's session honours the environment's proxies as requests does, and reads them once per host.

pytest-httpserver stands in for an HTTP proxy: a request sent through it arrives with the target's absolute
URL, which its log keeps.
"""

from __future__ import annotations

import pickle

import pytest
import requests
from pytest_httpserver import HTTPServer

from etl.sources.azure_devops.client import AdoClient
from etl.sources.http_session import EnvironmentOnceSession

#: A loopback port nothing listens on: a request sent to it as a proxy fails to connect.
DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_a_proxy_named_by_the_environment_carries_the_request(httpserver: HTTPServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/org/_apis/projects").respond_with_json({"value": []})
    monkeypatch.setenv("HTTP_PROXY", httpserver.url_for("/"))
    response = EnvironmentOnceSession().get("http://dev.azure.invalid/org/_apis/projects", timeout=10)
    assert response.json() == {"value": []}
    assert [request.url for request, _ in httpserver.log] == ["http://dev.azure.invalid/org/_apis/projects"]


def test_a_host_the_environment_exempts_is_reached_directly(httpserver: HTTPServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/org/_apis/projects").respond_with_json({"value": []})
    monkeypatch.setenv("HTTP_PROXY", DEAD_PROXY)
    monkeypatch.setenv("NO_PROXY", "localhost")  # the host of httpserver's URLs
    assert EnvironmentOnceSession().get(httpserver.url_for("/org/_apis/projects"), timeout=10).status_code == 200


def test_the_environment_is_read_at_a_hosts_first_request_only(httpserver: HTTPServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/org/_apis/projects").respond_with_json({"value": []})
    session = EnvironmentOnceSession()
    url = httpserver.url_for("/org/_apis/projects")
    assert session.get(url, timeout=10).status_code == 200
    monkeypatch.setenv("HTTP_PROXY", DEAD_PROXY)  # too late for this host: its first request went direct
    assert session.get(url, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.ProxyError):
        session.get(url.replace("localhost", "127.0.0.1"), timeout=10)  # another host reads it, and fails


def test_a_pickled_session_keeps_what_it_read(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/org/_apis/projects").respond_with_json({"value": []})
    session = EnvironmentOnceSession()
    url = httpserver.url_for("/org/_apis/projects")
    assert session.get(url, timeout=10).status_code == 200
    monkeypatch.setenv("HTTP_PROXY", DEAD_PROXY)
    assert pickle.loads(pickle.dumps(session)).get(url, timeout=10).status_code == 200


def test_a_requests_own_proxies_are_used_as_given(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/org/_apis/projects").respond_with_json({"value": []})
    monkeypatch.setenv("HTTP_PROXY", DEAD_PROXY)
    session = EnvironmentOnceSession()
    response = session.get("http://dev.azure.invalid/org/_apis/projects", proxies={"http": httpserver.url_for("/")},
                           timeout=10)
    assert response.status_code == 200


def test_the_azure_devops_client_sends_through_the_environments_proxy(httpserver: HTTPServer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/org/_apis/projects").respond_with_json({"count": 0, "value": []})
    monkeypatch.setenv("HTTP_PROXY", httpserver.url_for("/"))
    client = AdoClient("ado", "http://dev.azure.invalid/org")
    body, _ = client.get_json(client.url(None, "_apis/projects"))
    assert body == {"count": 0, "value": []}
    assert [request.url for request, _ in httpserver.log] == [
        "http://dev.azure.invalid/org/_apis/projects?api-version=7.1"]
