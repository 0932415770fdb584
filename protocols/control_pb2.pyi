from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    QUEUED: _ClassVar[JobState]
    RUNNING: _ClassVar[JobState]
    SUCCEEDED: _ClassVar[JobState]
    FAILED: _ClassVar[JobState]
    CANCELLED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
QUEUED: JobState
RUNNING: JobState
SUCCEEDED: JobState
FAILED: JobState
CANCELLED: JobState

class Fingerprint(_message.Message):
    __slots__ = ["dataset", "sha256", "schema_sha256", "rows", "columns"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_SHA256_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    sha256: str
    schema_sha256: str
    rows: int
    columns: int
    def __init__(self, dataset: _Optional[str] = ..., sha256: _Optional[str] = ..., schema_sha256: _Optional[str] = ..., rows: _Optional[int] = ..., columns: _Optional[int] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ["party", "host", "link_port", "spu_port"]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    LINK_PORT_FIELD_NUMBER: _ClassVar[int]
    SPU_PORT_FIELD_NUMBER: _ClassVar[int]
    party: str
    host: str
    link_port: int
    spu_port: int
    def __init__(self, party: _Optional[str] = ..., host: _Optional[str] = ..., link_port: _Optional[int] = ..., spu_port: _Optional[int] = ...) -> None: ...

class PrepareRequest(_message.Message):
    __slots__ = ["job_id", "spec_yaml"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    spec_yaml: str
    def __init__(self, job_id: _Optional[str] = ..., spec_yaml: _Optional[str] = ...) -> None: ...

class PrepareReply(_message.Message):
    __slots__ = ["endpoint", "fingerprint", "audit_hash"]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    AUDIT_HASH_FIELD_NUMBER: _ClassVar[int]
    endpoint: Endpoint
    fingerprint: Fingerprint
    audit_hash: str
    def __init__(self, endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., fingerprint: _Optional[_Union[Fingerprint, _Mapping]] = ..., audit_hash: _Optional[str] = ...) -> None: ...

class StartRequest(_message.Message):
    __slots__ = ["job_id", "cluster"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    cluster: _containers.RepeatedCompositeFieldContainer[Endpoint]
    def __init__(self, job_id: _Optional[str] = ..., cluster: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ...) -> None: ...

class JobRef(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ConcludeRequest(_message.Message):
    __slots__ = ["job_id", "state", "reason"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class PartyStatus(_message.Message):
    __slots__ = ["party", "job_id", "state", "stage", "detail", "worker_pid", "updated_at", "audit_hash"]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    WORKER_PID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    AUDIT_HASH_FIELD_NUMBER: _ClassVar[int]
    party: str
    job_id: str
    state: JobState
    stage: str
    detail: str
    worker_pid: int
    updated_at: float
    audit_hash: str
    def __init__(self, party: _Optional[str] = ..., job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., stage: _Optional[str] = ..., detail: _Optional[str] = ..., worker_pid: _Optional[int] = ..., updated_at: _Optional[float] = ..., audit_hash: _Optional[str] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ["name", "media_type", "data", "sha256"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    media_type: str
    data: bytes
    sha256: str
    def __init__(self, name: _Optional[str] = ..., media_type: _Optional[str] = ..., data: _Optional[bytes] = ..., sha256: _Optional[str] = ...) -> None: ...

class Outputs(_message.Message):
    __slots__ = ["party", "metrics", "artifacts", "model_parts", "stage_seconds", "audit_hash", "security"]
    class MetricsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ModelPartsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class StageSecondsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SecurityEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PARTY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_PARTS_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_HASH_FIELD_NUMBER: _ClassVar[int]
    SECURITY_FIELD_NUMBER: _ClassVar[int]
    party: str
    metrics: _containers.ScalarMap[str, float]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    model_parts: _containers.ScalarMap[str, str]
    stage_seconds: _containers.ScalarMap[str, float]
    audit_hash: str
    security: _containers.ScalarMap[str, str]
    def __init__(self, party: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ..., model_parts: _Optional[_Mapping[str, str]] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., audit_hash: _Optional[str] = ..., security: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ["spec_yaml"]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    spec_yaml: str
    def __init__(self, spec_yaml: _Optional[str] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ["job_id", "state", "stage", "detail", "parties", "result_json"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    stage: str
    detail: str
    parties: _containers.RepeatedCompositeFieldContainer[PartyStatus]
    result_json: str
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., stage: _Optional[str] = ..., detail: _Optional[str] = ..., parties: _Optional[_Iterable[_Union[PartyStatus, _Mapping]]] = ..., result_json: _Optional[str] = ...) -> None: ...

class ContributionRequest(_message.Message):
    __slots__ = ["model", "version", "job_id", "kind", "part_sha256", "uscc"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PART_SHA256_FIELD_NUMBER: _ClassVar[int]
    USCC_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    job_id: str
    kind: str
    part_sha256: str
    uscc: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., job_id: _Optional[str] = ..., kind: _Optional[str] = ..., part_sha256: _Optional[str] = ..., uscc: _Optional[str] = ...) -> None: ...

class Contribution(_message.Message):
    __slots__ = ["held", "decisions", "partial", "categories", "withheld"]
    class CategoriesEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    HELD_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    held: bool
    decisions: bytes
    partial: float
    categories: _containers.ScalarMap[str, float]
    withheld: bool
    def __init__(self, held: bool = ..., decisions: _Optional[bytes] = ..., partial: _Optional[float] = ..., categories: _Optional[_Mapping[str, float]] = ..., withheld: bool = ...) -> None: ...
