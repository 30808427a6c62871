"""The agent directory: one place an identity becomes an agent, its cache bounded and kept fresh."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from callvault.db.models import Participant, Recording, Team, User
from callvault.services.context import ServiceContext
from callvault.services.directory import AgentDirectory
from callvault.services.siprec_session import SiprecSession
from callvault.sip.metadata import ParticipantMeta, RecordingMetadata, StreamMeta
from tests.support.people import ADMIN


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lookups(directory: AgentDirectory, counter: list[str]) -> None:
    real = directory._lookup

    def counting(keys: list[str]) -> int | None:
        counter.append(keys[0])
        return real(keys)

    directory._lookup = counting  # type: ignore[method-assign]


def test_cache_is_bounded_least_recently_used_out(ctx: ServiceContext) -> None:
    agent = ctx.users.create_user(ADMIN, "alice", "agent", sip_identities=["1001@pbx.example"])
    directory = AgentDirectory(ctx.catalog, "US", cache_entries=3)
    asked: list[str] = []
    _lookups(directory, asked)
    assert directory.agent_for("sip:1001@pbx.example") == agent.id
    for n in range(5):
        assert directory.agent_for(f"sip:{2000 + n}@pbx.example") is None
    assert len(directory) == 3  # never more than the bound, however many callers pass by
    assert directory.agent_for("sip:2004@pbx.example") is None  # recent: answered from the cache
    assert asked.count("2004@pbx.example") == 1
    assert directory.agent_for("sip:1001@pbx.example") == agent.id  # pushed out: asked again
    assert asked.count("1001@pbx.example") == 2


def test_answers_expire_and_new_identities_are_seen_at_once(ctx: ServiceContext) -> None:
    clock = Clock()
    directory = AgentDirectory(ctx.catalog, "US", cache_seconds=60.0, clock=clock)
    asked: list[str] = []
    _lookups(directory, asked)
    assert directory.agent_for("sip:1002@pbx.example") is None
    clock.now = 59.0
    assert directory.agent_for("sip:1002@pbx.example") is None
    assert len(asked) == 1
    clock.now = 61.0
    directory.agent_for("sip:1002@pbx.example")
    assert len(asked) == 2  # stale after the TTL

    # The service context's directory is told when a user gets identities.
    shared = ctx.directory
    assert shared.agent_for("sip:1003@pbx.example") is None
    bob = ctx.users.create_user(ADMIN, "bob", "agent", sip_identities=["1003"])
    assert shared.agent_for("sip:1003@pbx.example") == bob.id  # not a minute later


def test_agent_user_id_reaches_the_participant_row(ctx: ServiceContext) -> None:
    agent = ctx.users.create_user(ADMIN, "carol", "agent", sip_identities=["1004@pbx.example"])
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    asked: list[str] = []
    _lookups(ctx.directory, asked)
    session = SiprecSession("call-7", start, agent_for=ctx.directory.agent_for)
    session.apply_metadata(
        RecordingMetadata(
            data_mode="complete",
            participants=[
                ParticipantMeta("c", aor="+14155550100@sbc", send_stream_ids=["s1"]),
                ParticipantMeta("a", aor="1004@pbx.example", send_stream_ids=["s2"]),
            ],
            streams=[StreamMeta("s1", label="1"), StreamMeta("s2", label="2")],
        ),
        start,
    )
    session.bind_streams(["1", "2"])
    session.bind_streams(["1", "2"])  # channel assignment asks again; the directory answers from memory
    recording_id = ctx.recordings.begin(session.call)
    assert sorted(asked) == ["+14155550100@sbc", "1004@pbx.example"]  # each identity resolved once
    with ctx.catalog.read() as db:
        recording = db.get(Recording, recording_id)
        assert recording is not None and recording.agent_user_id == agent.id
        rows = db.scalars(select(Participant).where(Participant.call_id == recording.call_id)).all()
        assert {(p.aor, p.role, p.user_id) for p in rows} == {
            ("+14155550100@sbc", "customer", None),
            ("1004@pbx.example", "agent", agent.id),
        }


def test_team_is_cached_and_expires(ctx: ServiceContext) -> None:
    agent = ctx.users.create_user(ADMIN, "dave", "agent", team="north", sip_identities=["1005@pbx.example"])
    clock = Clock()
    directory = AgentDirectory(ctx.catalog, "US", cache_seconds=60.0, clock=clock)
    north = directory.team_of(agent.id)
    assert north is not None
    with ctx.catalog.write() as session:
        session.add(Team(name="south"))
        session.flush()
        south = session.scalar(select(Team.id).where(Team.name == "south"))
        session.execute(update(User).where(User.id == agent.id).values(team_id=south))
    clock.now = 59.0
    assert directory.team_of(agent.id) == north  # asked on every call: answered from the cache
    clock.now = 61.0
    assert directory.team_of(agent.id) == south  # stale after the TTL
    assert directory.team_of(None) is None
