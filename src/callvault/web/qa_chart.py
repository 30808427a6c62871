"""A scorecard's weekly trend as an SVG line chart, laid out here so the page needs no script.

Scores run 0–100 on the vertical axis; each ISO week of the trend is one
point, evenly spaced (weeks without evaluations are left out of the trend by
the scorecard service, so the chart labels every point with its week).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 480, 180
LEFT, RIGHT, TOP, BOTTOM = 36, 12, 12, 28
GRID = (0, 25, 50, 75, 100)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    week: str
    score: float
    evaluations: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: list[Point]
    polyline: str
    grid: list[tuple[int, float]]  # (score, y) of each horizontal rule
    left: int
    right: int
    baseline: float


def _y(score: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - max(0.0, min(100.0, score)) / 100)


def trend_chart(trend: list[dict[str, Any]]) -> Chart:
    """The chart of ``[{"week", "evaluations", "average_score"}]`` (weeks in order)."""
    scored = [w for w in trend if w.get("average_score") is not None]
    span = WIDTH - LEFT - RIGHT
    step = span / (len(scored) - 1) if len(scored) > 1 else 0.0
    points = [
        Point(
            x=round(LEFT + (i * step if len(scored) > 1 else span / 2), 1),
            y=round(_y(float(w["average_score"])), 1),
            week=str(w["week"]),
            score=float(w["average_score"]),
            evaluations=int(w["evaluations"]),
        )
        for i, w in enumerate(scored)
    ]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        points=points,
        polyline=" ".join(f"{p.x},{p.y}" for p in points),
        grid=[(score, round(_y(score), 1)) for score in GRID],
        left=LEFT,
        right=WIDTH - RIGHT,
        baseline=HEIGHT - BOTTOM,
    )
