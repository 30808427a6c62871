"""Quality management, wired: one bundle of its services for the service context.

Forms (:mod:`.qa_forms`), evaluations (:mod:`.qa_evaluations`), disputes
(:mod:`.qa_disputes`), calibration (:mod:`.qa_calibration`), the sampling
queue (:mod:`.qa_sampling`), scorecards (:mod:`.qa_scorecards`), the coaching
library of clips and playlists (:mod:`.qa_library`) and coaching items
(:mod:`.qa_coaching`). They share the catalog, the audit trail, the access
table's ``qa.*`` rows and the alerts service.
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.db.catalog import Catalog
from callvault.services.alerts import AlertService
from callvault.services.audit import AccessLog
from callvault.services.playback import PlaybackService
from callvault.services.qa_calibration import CalibrationService
from callvault.services.qa_coaching import CoachingService
from callvault.services.qa_disputes import DisputeService
from callvault.services.qa_evaluations import EvaluationService
from callvault.services.qa_forms import FormService
from callvault.services.qa_library import ClipLibrary
from callvault.services.qa_sampling import SamplingService
from callvault.services.qa_scorecards import ScorecardService
from callvault.services.redaction import RedactedAudio


@dataclass(frozen=True)
class QaServices:
    forms: FormService
    evaluations: EvaluationService
    disputes: DisputeService
    calibrations: CalibrationService
    sampling: SamplingService
    scorecards: ScorecardService
    library: ClipLibrary
    coaching: CoachingService


def open_qa(
    catalog: Catalog,
    access_log: AccessLog,
    alerts: AlertService,
    playback: PlaybackService,
    redaction: RedactedAudio,
) -> QaServices:
    return QaServices(
        forms=FormService(catalog, access_log),
        evaluations=EvaluationService(catalog, access_log, alerts),
        disputes=DisputeService(catalog, access_log),
        calibrations=CalibrationService(catalog, access_log),
        sampling=SamplingService(catalog, access_log),
        scorecards=ScorecardService(catalog, access_log),
        library=ClipLibrary(catalog, access_log, playback, redaction),
        coaching=CoachingService(catalog, access_log),
    )
