"""Wiring: build every domain service from settings (the composition root below the runtime).

The implementation behind each port is chosen here by configuration: the blob
store by ``CALLVAULT_STORAGE_URL``, the catalog by ``CALLVAULT_DATABASE_URL``,
the key provider (local keyring today) and the manifest signer from files in
the data directory.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from sqlalchemy import select

from callvault.crypto.keyprovider import KeyProvider
from callvault.crypto.keyring import LocalKeyring
from callvault.crypto.personal_hash import KEY_NAME as PERSONAL_HASH_KEY
from callvault.crypto.personal_hash import PersonalHasher
from callvault.crypto.secret_box import SecretBox
from callvault.crypto.signing import ManifestSigner
from callvault.db.catalog import Catalog
from callvault.db.models import Recording, SealLogEntry
from callvault.jobs.factory import open_job_queue
from callvault.jobs.port import JobQueue
from callvault.services.access_requests import AccessRequestService
from callvault.services.alerts import AlertService
from callvault.services.announcements import AnnouncementService
from callvault.services.assurance import Reconciler
from callvault.services.assurance_report import AssuranceReport
from callvault.services.audit import AccessLog
from callvault.services.audit_log import AuditLog
from callvault.services.call_insights import CallInsights
from callvault.services.call_records import CallRecordStore
from callvault.services.call_refs import CallRefs
from callvault.services.comments import CommentService
from callvault.services.consent import ConsentStates
from callvault.services.decoder_sandbox import DecoderSandbox
from callvault.services.deletion import DeletionService
from callvault.services.directory import AgentDirectory
from callvault.services.disclosure_check import DisclosureChecker
from callvault.services.disclosure_report import DisclosureReport
from callvault.services.erasure import ErasureService
from callvault.services.events import EventBus
from callvault.services.importer import AudioImporter
from callvault.services.integrity import IntegrityService, Liveness
from callvault.services.jurisdiction_table import JurisdictionTable
from callvault.services.key_epochs import KeyEpochs
from callvault.services.key_rotation import KeyRotationService
from callvault.services.legal_holds import LegalHoldService
from callvault.services.phrase_categories import PhraseCategories
from callvault.services.playback import PlaybackService
from callvault.services.qa import QaServices, open_qa
from callvault.services.recording_labels import RecordingLabels
from callvault.services.recording_rule_store import RecordingRuleStore
from callvault.services.recordings import RecordingService
from callvault.services.redaction import RedactedAudio
from callvault.services.retention import RetentionService
from callvault.services.seal_log import SealLog
from callvault.services.search import RecordingCatalog
from callvault.services.transcript_index import TranscriptIndex
from callvault.services.transcript_view import TranscriptViews
from callvault.services.transcription import TranscriptionService, transcriber_config
from callvault.services.transcription_jobs import TranscribeOnSeal, job_state
from callvault.services.transcripts import TranscriptStore
from callvault.services.usage_monitor import UsageMonitor, UsagePolicy
from callvault.services.users import UserService, account_policy
from callvault.services.waveform import WaveformService
from callvault.services.webhook_outbox import WebhookOutbox
from callvault.services.webhooks import WebhookService
from callvault.settings import Settings
from callvault.speech import pii
from callvault.storage.blobstore import BlobStore
from callvault.storage.factory import open_blob_store


@dataclass
class ServiceContext:
    settings: Settings
    catalog: Catalog
    blobs: BlobStore
    keys: KeyProvider
    signer: ManifestSigner
    directory: AgentDirectory
    access_log: AccessLog
    # The hash-chained audit log behind access_log (checkpoints, verification).
    audit_log: AuditLog
    users: UserService
    recordings: RecordingService
    search: RecordingCatalog
    playback: PlaybackService
    integrity: IntegrityService
    key_rotation: KeyRotationService
    importer: AudioImporter
    seal_log: SealLog
    # Domain events (webhooks and alerts subscribe); services publish after commit.
    events: EventBus
    # Every kind of alert (usage limits, must-record calls not recorded whole).
    alerts: AlertService
    # Plays/downloads/exports per hour against role limits and own baselines.
    usage_monitor: UsageMonitor
    # Compliance lifecycle (retention, legal holds, erasure, key epochs).
    deletion: DeletionService
    retention: RetentionService
    holds: LegalHoldService
    erasure: ErasureService
    access_requests: AccessRequestService
    key_epochs: KeyEpochs
    labels: RecordingLabels
    webhooks: WebhookService
    webhook_outbox: WebhookOutbox
    # Disclosure verification: the announcements, the check at sealing, the report.
    announcements: AnnouncementService
    disclosure: DisclosureChecker
    disclosure_report: DisclosureReport
    # Call references (recording id, SIP Call-ID, vendor ids) of call-time controls.
    call_refs: CallRefs
    # The web UI's recording page: comments pinned to a moment, waveform peaks (cached).
    comments: CommentService
    waveforms: WaveformService
    # Consent and jurisdiction: the requirements table in force, each party's consent state.
    jurisdictions: JurisdictionTable
    consent: ConsentStates
    # Recording assurance: the PBX's call records, their reconciliation, the report.
    call_records: CallRecordStore
    assurance: Reconciler
    assurance_report: AssuranceReport
    # Recording rules: which calls are recorded, sampled, kept on demand or not recorded.
    recording_rules: RecordingRuleStore
    # Quality management: forms, evaluations, disputes, calibration, scorecards, coaching.
    qa: QaServices
    # Speech analytics: transcripts, encrypted under each recording's data key (internal reads).
    transcripts: TranscriptStore
    # Transcribes one recording (the `transcribe` job); loads its recogniser on first use.
    transcription: TranscriptionService
    # The API's reads of transcripts: scoped like the recording, audited.
    transcript_views: TranscriptViews
    # Audio as the caller may hear it: personal data silenced for roles that may not hear it.
    redacted_audio: RedactedAudio
    # Speech analytics: phrase categories, per-call metrics, hits, adherence, sentiment.
    phrase_categories: PhraseCategories
    insights: CallInsights
    # Background jobs (transcription, analytics ...): enqueue here, workers run them.
    jobs: JobQueue
    # Transcript full-text search (redacted words, per side; the `text=` of recording search).
    transcript_index: TranscriptIndex

    def close(self) -> None:
        self.jobs.close()
        self.waveforms.close()
        self.importer.close()
        self.seal_log.flush()
        self.audit_log.checkpoint_quietly()
        self.catalog.dispose()


def open_context(settings: Settings, migrate: bool = True) -> ServiceContext:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    catalog = Catalog(settings.resolved_database_url)
    if migrate:
        catalog.migrate()
    blobs = open_blob_store(settings.resolved_storage_url)
    # Keys are created on a fresh vault only: once it holds recordings, a missing key file
    # must stop the start loudly instead of being replaced by a key that opens nothing.
    fresh = not _holds_recordings(catalog)
    try:
        keys = LocalKeyring(data_dir / "keyring.json", create=fresh)
        signer = ManifestSigner(data_dir / "signing-key.pem", create=fresh)
    except BaseException:
        catalog.dispose()
        raise
    seal_log = SealLog(catalog, signer, data_dir)
    if migrate:
        seal_log.adopt_backfill()
    region = settings.default_region
    directory = AgentDirectory(catalog, region)
    audit_log = AuditLog(catalog, signer, data_dir)
    access_log = AccessLog(catalog, audit_log)
    events = EventBus()
    webhook_outbox = WebhookOutbox(catalog)
    events.subscribe(webhook_outbox)
    jurisdictions = JurisdictionTable(
        catalog,
        access_log,
        gdpr_explicit=settings.consent_gdpr_explicit,
        site_jurisdiction=settings.consent_site_jurisdiction or None,
    )
    recordings = RecordingService(
        catalog, blobs, keys, signer, directory, region, seal_log, events, jurisdictions.requirement_of
    )
    playback = PlaybackService(catalog, blobs, keys, access_log, recordings)
    alerts = AlertService(catalog, access_log, events)
    usage_monitor = UsageMonitor(catalog, alerts, UsagePolicy.from_settings(settings))
    access_log.watch(usage_monitor.observe)
    hasher = PersonalHasher(data_dir / PERSONAL_HASH_KEY)
    # The index is plain catalog rows: it holds the PII-redacted words only.
    transcript_index = TranscriptIndex(catalog, redact=pii.redact)
    search = RecordingCatalog(catalog, directory, access_log, region, transcript_index)
    deletion = DeletionService(catalog, blobs, signer, seal_log, access_log, hasher, events)
    key_rotation = KeyRotationService(catalog, keys, access_log, signer)
    sandbox = DecoderSandbox(settings.decoder_memory_mb * 2**20, settings.decoder_timeout)
    waveforms = WaveformService(catalog, playback)
    transcripts = TranscriptStore(catalog, keys, events)
    redacted_audio = RedactedAudio(catalog, playback, transcripts, job_state(catalog))
    events.subscribe(waveforms)
    phrase_categories = PhraseCategories(catalog, access_log)
    jobs = open_job_queue(settings, catalog)
    insights = CallInsights(catalog, waveforms, phrase_categories, transcripts.get, jobs, access_log)
    events.subscribe(insights)
    transcript_index.follow(events, transcripts)  # each transcript.ready is indexed
    jobs = open_job_queue(settings, catalog)
    if settings.transcription_auto:
        events.subscribe(TranscribeOnSeal(jobs))
    return ServiceContext(
        settings=settings,
        catalog=catalog,
        blobs=blobs,
        keys=keys,
        signer=signer,
        directory=directory,
        access_log=access_log,
        audit_log=audit_log,
        users=UserService(
            catalog, region, access_log, account_policy(settings), on_identities_added=directory.forget
        ),
        recordings=recordings,
        search=search,
        playback=playback,
        integrity=IntegrityService(
            catalog,
            blobs,
            signer,
            playback,
            access_log,
            seal_log,
            # Journals are written every second while RTP flows; a call silent for rtp_timeout ends.
            Liveness(settings.spool_dir, float(settings.rtp_timeout) + 30.0),
        ),
        key_rotation=key_rotation,
        importer=AudioImporter(
            recordings,
            directory,
            access_log,
            sandbox,
            settings.opus_bitrate,
            settings.max_upload_bytes,
            settings.max_upload_seconds,
            settings.archive_silence_gate,
        ),
        seal_log=seal_log,
        events=events,
        alerts=alerts,
        usage_monitor=usage_monitor,
        deletion=deletion,
        retention=RetentionService(catalog, deletion, access_log, settings.retention_default_days),
        holds=LegalHoldService(catalog, directory, access_log, events, region),
        erasure=ErasureService(
            catalog, deletion, access_log, hasher, signer, events, region, settings.erasure_multi_party
        ),
        access_requests=AccessRequestService(catalog, playback, search, access_log, hasher, region),
        key_epochs=KeyEpochs(catalog, keys, key_rotation, settings.key_epoch_hours),
        labels=RecordingLabels(catalog, access_log),
        webhooks=WebhookService(
            catalog,
            SecretBox.from_file(data_dir / "webhook-secrets.key"),
            webhook_outbox,
            access_log,
            settings.webhook_allow_private_targets,
        ),
        webhook_outbox=webhook_outbox,
        announcements=AnnouncementService(catalog, access_log, sandbox, settings.max_upload_bytes),
        disclosure=DisclosureChecker(catalog),
        disclosure_report=DisclosureReport(catalog, access_log),
        call_refs=CallRefs(catalog),
        comments=CommentService(catalog, access_log),
        waveforms=waveforms,
        jurisdictions=jurisdictions,
        consent=ConsentStates(catalog, access_log, region),
        call_records=CallRecordStore(catalog, directory, access_log, hasher, region),
        assurance=Reconciler(
            catalog,
            alerts,
            access_log,
            hasher,
            region,
            settings.assurance_match_tolerance,
            settings.assurance_grace_seconds,
        ),
        assurance_report=AssuranceReport(catalog, access_log),
        recording_rules=RecordingRuleStore(catalog, access_log, settings.site_time_zone),
        qa=open_qa(catalog, access_log, alerts, playback, redacted_audio),
        transcripts=transcripts,
        transcription=TranscriptionService(
            catalog, playback, transcripts, functools.partial(transcriber_config, settings)
        ),
        transcript_views=TranscriptViews(catalog, transcripts, access_log, job_state(catalog)),
        redacted_audio=redacted_audio,
        phrase_categories=phrase_categories,
        insights=insights,
        jobs=jobs,
        transcript_index=transcript_index,
    )


def _holds_recordings(catalog: Catalog) -> bool:
    """True once anything was recorded: a recording row, or a seal log entry of one since deleted."""
    with catalog.read() as session:
        if session.scalar(select(Recording.id).limit(1)) is not None:
            return True
        return session.scalar(select(SealLogEntry.seq).limit(1)) is not None
