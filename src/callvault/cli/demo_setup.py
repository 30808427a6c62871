"""``callvault demo``'s first-run set-up: an agent for the demo calls to attach to.

The demo calls come from the agent AOR :data:`~callvault.runtime.demo_src.AGENT_AOR`.
Without a user owning that identity, a newcomer's first ``recordings list``
shows dashes where the agent goes, and the stereo layout (agent left,
customer right) falls back to the SDP order. So the demo makes sure someone
owns it: an existing user who already has that identity is used as is;
otherwise the agent :data:`DEMO_AGENT` is created (no password: it cannot
log in, it only names the agent of the demo recordings).
"""

from __future__ import annotations

from sqlalchemy import select

from callvault.db.models import User
from callvault.runtime.demo_src import AGENT_AOR
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

DEMO_AGENT = "demo.agent"


def ensure_demo_agent(ctx: ServiceContext, actor: Principal) -> tuple[str, bool]:
    """(username of the agent owning the demo AOR, whether it was created now)."""
    user_id = ctx.directory.agent_for(AGENT_AOR)
    if user_id is None:
        ctx.users.create_user(
            actor, DEMO_AGENT, "agent", sip_identities=[AGENT_AOR], display_name="Demo Agent"
        )
        return DEMO_AGENT, True
    with ctx.catalog.read() as session:
        username = session.scalar(select(User.username).where(User.id == user_id))
    return str(username), False
