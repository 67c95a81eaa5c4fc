*** Settings ***
Documentation     Cross-provider cluster lifecycle: init on hetzner, join scaleway then ovh, decommission,
...               replace, reactivate. After every transition all active nodes agree on membership, each row
...               has the expected transport address, scope and status, and sync endpoints are reachable.

Resource          ../resources/tribes.resource

Suite Setup       Start The Target For This Suite
Suite Teardown    Clean Up The Target
Test Setup        Skip If An Earlier Step Failed
Test Teardown     Heal Faults Injected By This Test

Test Tags    scenario:cluster_lifecycle
...          cluster
...          provider:hetzner
...          provider:scaleway
...          provider:ovh
...          destructive


*** Test Cases ***
The Init Node Holds Its Own Membership
    [Tags]    req:REF-8
    ...       req:REF-3
    ...       req:REF-4
    ...       req:REF-5
    ...       req:REF-6
    ...       req:REF-12
    ...       req:REF-15
    ...       req:REF-16
    ...       req:LEG-1
    ${init}=    A Cluster Initialised On Hetzner
    VAR    ${INIT}=    ${init}    scope=SUITE
    Every Active Node Agrees On Membership    ${INIT}:active
    Sync Endpoints Match Transport Addresses And Are Reachable

A Scaleway Node Joins And Goes Active Everywhere
    [Tags]    req:LEG-2
    ...       req:REF-9
    ...       req:REF-3
    ...       req:REF-4
    ...       req:REF-5
    ...       req:REF-6
    ...       req:REF-12
    ...       req:REF-15
    ...       req:REF-16
    ...       req:LEG-1
    ${joined}=    Join A Scaleway Node And Wait Until It Is Active Everywhere
    VAR    ${SCALEWAY}=    ${joined}    scope=SUITE
    Every Active Node Agrees On Membership    ${INIT}:active    ${SCALEWAY}:active
    Sync Endpoints Match Transport Addresses And Are Reachable

An OVH Node Joins And Goes Active Everywhere
    [Tags]    req:REF-9
    ...       req:REF-3
    ...       req:REF-4
    ...       req:REF-5
    ...       req:REF-6
    ...       req:REF-12
    ...       req:REF-15
    ...       req:REF-16
    ...       req:LEG-1
    ${joined}=    Join An Ovh Node And Wait Until It Is Active Everywhere
    VAR    ${OVH}=    ${joined}    scope=SUITE
    Every Active Node Agrees On Membership    ${INIT}:active    ${SCALEWAY}:active    ${OVH}:active
    Sync Endpoints Match Transport Addresses And Are Reachable

A Decommissioned Node Stays Archived On Every Remaining Node
    [Tags]    req:LEG-3
    ...       req:REF-7
    ...       req:REF-10
    ...       req:REF-3
    ...       req:REF-4
    ...       req:REF-5
    ...       req:REF-6
    ...       req:REF-12
    ...       req:REF-15
    ...       req:REF-16
    ...       req:LEG-1
    ${before}=    Get Current Time UTC
    Decommission Node    ${SCALEWAY}
    Node Should Be Archived As Decommissioned    ${SCALEWAY}    since=${before}
    Every Active Node Agrees On Membership    ${INIT}:active    ${SCALEWAY}:decommissioned    ${OVH}:active
    Sync Endpoints Match Transport Addresses And Are Reachable

The Decommissioned Node Reports Itself Out Of The Cluster
    [Tags]    req:DECOM-1    req:DECOM-2    req:DECOM-3
    Decommissioned Node Should Report Itself Out Of The Cluster    ${SCALEWAY}

The Decommissioned Node Cannot Rejoin Through A Resync
    [Tags]    req:API-11
    Management Call Should Be Refused    ${SCALEWAY}    sync.resync    unsafe-operation

Writes Of The Active Nodes No Longer Reach The Decommissioned Node
    [Tags]    req:DECOM-4
    Writes Of The Active Nodes Do Not Reach    ${SCALEWAY}    ${INIT}

A Replacement Join Converges With A Fresh Activation
    [Tags]    req:REF-7
    ...       req:REF-11
    ...       req:REF-3
    ...       req:REF-4
    ...       req:REF-5
    ...       req:REF-6
    ...       req:REF-12
    ...       req:REF-15
    ...       req:REF-16
    ...       req:LEG-1
    ${before}=    Get Current Time UTC
    ${replacement}=    Replace Node    ${OVH}    scaleway
    VAR    ${REPLACEMENT}=    ${replacement.name}    scope=SUITE
    Wait Until Node Is Active Everywhere    ${REPLACEMENT}
    Activation Should Be Fresh    ${REPLACEMENT}    ${before}
    Node Should Be Archived As Decommissioned    ${OVH}    since=${before}
    Every Active Node Agrees On Membership
    ...    ${INIT}:active    ${SCALEWAY}:decommissioned    ${OVH}:decommissioned    ${REPLACEMENT}:active
    Sync Endpoints Match Transport Addresses And Are Reachable

A Decommissioned Node Can Be Reactivated
    [Tags]    req:LEG-4
    ...       req:REF-14
    ...       req:REF-3
    ...       req:REF-4
    ...       req:REF-5
    ...       req:REF-6
    ...       req:REF-12
    ...       req:REF-15
    ...       req:REF-16
    ...       req:LEG-1
    ${before}=    Get Current Time UTC
    Reactivate Node    ${SCALEWAY}
    Wait Until Node Is Active Everywhere    ${SCALEWAY}
    Activation Should Be Fresh    ${SCALEWAY}    ${before}
    Every Active Node Agrees On Membership
    ...    ${INIT}:active    ${SCALEWAY}:active    ${OVH}:decommissioned    ${REPLACEMENT}:active
    Sync Endpoints Match Transport Addresses And Are Reachable

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
