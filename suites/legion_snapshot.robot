*** Settings ***
Documentation     Legion's sanitized snapshot (docs/contract.md §4): while a join is under way and after a
...               decommission it keeps the transient syncing row and the archived decommissioned row in
...               clusterMembership, and at no point holds secret material (no private key, nsec or token).

Resource          ../resources/tribes.resource

Suite Setup       Start The Target For This Suite
Suite Teardown    Clean Up The Target
Test Setup        Skip If An Earlier Step Failed
Test Teardown     Heal Faults Injected By This Test

Test Tags         scenario:legion_snapshot    cluster    provider:hetzner    provider:scaleway    destructive


*** Test Cases ***
The Snapshot Of A Running Cluster Holds No Secret Material
    [Tags]    req:SNAP-1
    ${init}=    A Cluster Initialised On Hetzner
    VAR    ${INIT}=    ${init}    scope=SUITE
    Legion Snapshot Should Hold No Secret Material
    Legion Snapshot Should Keep Membership Rows    ${INIT}:active

The Snapshot Keeps A Joining Node's Syncing Row
    [Tags]    req:SNAP-1    req:SNAP-2
    ${joiner}=    A Join Held In Syncing By A Publish Outage On    ${INIT}    scaleway
    VAR    ${JOINER}=    ${joiner}    scope=SUITE
    Legion Snapshot Should Keep Membership Rows    ${INIT}:active    ${JOINER}:syncing
    Legion Snapshot Should Hold No Secret Material
    Stop Publish Outage    ${INIT}
    Wait For Graph Run To Finish
    Wait Until Node Is Active Everywhere    ${JOINER}

The Snapshot Keeps A Decommissioned Node's Archived Row
    [Tags]    req:SNAP-1    req:SNAP-3
    Decommission Node    ${JOINER}
    Node Should Be Archived As Decommissioned    ${JOINER}
    Legion Snapshot Should Keep Membership Rows    ${INIT}:active    ${JOINER}:decommissioned
    Legion Snapshot Should Hold No Secret Material

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
