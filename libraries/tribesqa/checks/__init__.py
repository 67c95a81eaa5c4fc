"""Pure checks: judges that read one attempt's per-node answers and decide *done*, *not yet*
or *terminal* (settled evidence). No Robot, no network: unit-tested with ``FakeClock``; the
keywords in ``tribesqa.keywords`` wire them to probes through ``tribesqa.waiting``.
"""

from tribesqa.checks.health import (
    TRIBE_UNKNOWN,
    ClusterHealthJudge,
    TribeJudge,
)
from tribesqa.checks.judgement import (
    MEMBER_FIELDS,
    MEMBERSHIP_FIELDS_COMPARED,
    REGRESSION_GRACE_S,
    SYNC_HEALTH_PATH,
    Judgement,
    Rows,
    parse_time,
)
from tribesqa.checks.lifecycle import (
    ArchiveJudge,
    activation_problems,
    sync_endpoint_problems,
)
from tribesqa.checks.membership_judges import (
    MembershipJudge,
    NewerRows,
    NodeActiveJudge,
    StatusMemory,
    describe_membership,
    normalize_expected,
)
from tribesqa.checks.plugin_state import (
    ItemVisibleJudge,
    PluginStateJudge,
    StaysAbsentJudge,
    describe_plugin_state,
)

__all__ = [
    "MEMBERSHIP_FIELDS_COMPARED",
    "MEMBER_FIELDS",
    "REGRESSION_GRACE_S",
    "SYNC_HEALTH_PATH",
    "TRIBE_UNKNOWN",
    "ArchiveJudge",
    "ClusterHealthJudge",
    "ItemVisibleJudge",
    "Judgement",
    "MembershipJudge",
    "NewerRows",
    "NodeActiveJudge",
    "PluginStateJudge",
    "Rows",
    "StatusMemory",
    "StaysAbsentJudge",
    "TribeJudge",
    "activation_problems",
    "describe_membership",
    "describe_plugin_state",
    "normalize_expected",
    "parse_time",
    "sync_endpoint_problems",
]
