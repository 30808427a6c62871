"""``callvault demo``'s agent: created once with no password (it can never log in), or the user who
already owns the demo calls' agent identity."""

from __future__ import annotations

import pytest

from callvault.cli.demo_setup import DEMO_AGENT, ensure_demo_agent
from callvault.errors import AuthenticationFailed
from callvault.runtime.demo_src import AGENT_AOR
from callvault.services.context import ServiceContext
from tests.support.people import ADMIN, create_staff


def test_demo_agent_is_created_once_and_cannot_log_in(ctx: ServiceContext) -> None:
    assert ensure_demo_agent(ctx, ADMIN) == (DEMO_AGENT, True)
    assert ensure_demo_agent(ctx, ADMIN) == (DEMO_AGENT, False)
    (agent,) = [u for u in ctx.users.list_users(ADMIN) if u.username == DEMO_AGENT]
    assert agent.role == "agent" and ctx.directory.agent_for(AGENT_AOR) is not None
    for password in ("", DEMO_AGENT, "demo"):
        with pytest.raises(AuthenticationFailed):
            ctx.users.authenticate_password(DEMO_AGENT, password)


def test_an_existing_owner_of_the_demo_identity_is_used(ctx: ServiceContext) -> None:
    create_staff(ctx)  # alice owns sip:1001@pbx.example, the demo calls' agent
    assert ensure_demo_agent(ctx, ADMIN) == ("alice", False)
    assert DEMO_AGENT not in {u.username for u in ctx.users.list_users(ADMIN)}
