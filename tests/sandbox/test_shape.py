"""Every provider's sandbox has the same shape (see badges/banking/sandbox/README.md), so the next
one slots in the same way: the same modules, its endpoints on two routers that its app factory mounts."""

from __future__ import annotations

import importlib

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from badges.banking.sandbox.plaid import SandboxSettings, create_sandbox_app
from badges.banking.sandbox.truelayer import create_truelayer_sandbox
from badges.banking.sandbox.yodlee import create_yodlee_sandbox

MODULES = ("app", "routes", "controls", "deps", "schemas", "errors", "faults", "bank", "institutions", "wire")
APPS = {
    "plaid": lambda: create_sandbox_app(SandboxSettings()),
    "truelayer": create_truelayer_sandbox,
    "yodlee": create_yodlee_sandbox,
}


@pytest.mark.parametrize("provider", APPS)
def test_each_provider_has_the_same_modules_and_mounts_both_routers(provider: str) -> None:
    package = f"badges.banking.sandbox.{provider}"
    for name in MODULES:
        assert importlib.import_module(f"{package}.{name}").__doc__, f"{package}.{name} says what it is for"
    app: FastAPI = APPS[provider]()
    mounted = {(path, method.upper()) for path, methods in app.openapi()["paths"].items() for method in methods}
    for name in ("routes", "controls"):
        router = importlib.import_module(f"{package}.{name}").router
        assert isinstance(router, APIRouter)
        routes = [route for route in router.routes if isinstance(route, APIRoute)]
        assert routes
        assert {(route.path, method) for route in routes for method in route.methods} <= mounted
