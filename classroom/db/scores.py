"""Stored scores: each counts once, under its participant and client id."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.db.models import Score
from classroom.domain.scoring import ScoreInput
from classroom.domain.timeline import ScoreKind


class ScoreStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, class_id: int, score: ScoreInput, kind: ScoreKind) -> bool:
        """Store ``score``; False if this participant already sent one with its client id."""
        try:
            async with self._sessions.begin() as db:
                db.add(
                    Score(
                        class_id=class_id,
                        participant_id=score.participant_id,
                        client_id=score.client_id,
                        segment_index=score.segment_index,
                        kind=kind.value,
                        value=score.value,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def totals(self, class_id: int) -> dict[int, int]:
        """Each participant's total of the class's scores."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(Score.participant_id, func.sum(Score.value))
                .where(Score.class_id == class_id)
                .group_by(Score.participant_id)
            )
            return {participant: int(total) for participant, total in rows}
