*** Settings ***
Documentation     Failure-oriented scenarios from the cluster-control plan. Each states the expected
...               behaviour: the system repairs itself after a publish outage, and refuses the unsafe
...               operation after a partial membership change.

Resource          ../resources/tribes.resource

Suite Setup       Start The Target For This Suite
Suite Teardown    Clean Up The Target
Test Setup        Skip If An Earlier Step Failed
Test Teardown     Heal Faults Injected By This Test

Test Tags         scenario:failure_modes    cluster    provider:hetzner    provider:scaleway    destructive


*** Test Cases ***
A Publish Outage During A Membership Change Repairs After The Outage
    [Documentation]    Expected: while a node serves but does not publish, its writes stay local and a
    ...    joining node cannot finish replaying (it stays syncing, Legion's graph run waits); once
    ...    the outage ends the join completes and the held writes reach every node. While the graph
    ...    run waits, Legion refuses to decommission a node.
    [Tags]    req:REF-17    req:LEG-7
    ${init}=    A Cluster Initialised On Hetzner
    VAR    ${INIT}=    ${init}    scope=SUITE
    ${second}=    Join A Scaleway Node And Wait Until It Is Active Everywhere
    VAR    ${SECOND}=    ${second}    scope=SUITE
    Roll Out Plugin To Nodes    ${PLUGIN}    ${COMMIT}
    ${run}=    New Run Id
    Start Publish Outage    ${SECOND}
    ${held}=    Create Case    ${SECOND}    ${run}    written during the outage
    ${planned}=    Plan Join Nodes    hetzner    1
    VAR    ${THIRD}=    ${planned[0].name}    scope=SUITE
    Start Materializing Planned Nodes
    Node Should Stay Syncing For    ${THIRD}
    Node Should Stay Stale For    ${INIT}    ${run}    ${held.id}
    Graph Run Should Still Be Running
    Decommission Should Be Refused    ${INIT}    unsafe-operation
    Stop Publish Outage    ${SECOND}
    Wait For Graph Run To Finish
    Wait Until Node Is Active Everywhere    ${THIRD}
    Wait Until Case Is Visible On Node    ${INIT}    ${run}    ${held.id}
    Every Active Node Agrees On Membership    ${INIT}:active    ${SECOND}:active    ${THIRD}:active

An Interrupted Graph Run Leaves A Consistent Cluster And Unsafe Operations Are Refused
    [Documentation]    Expected: a graph run stopped midway leaves the nodes it materialized active and
    ...    the rest planned (no half-member anywhere), and Legion refuses to decommission the
    ...    cluster's last active node.
    [Tags]    req:LEG-5    req:LEG-6    req:REF-18    req:REF-19
    Plan One Join Node Per Provider    ovh    scaleway
    ${run}=    Interrupt Graph Run After    1
    Graph Run Should Be Interrupted With Consistent Membership    ${run}
    Every Active Node Agrees On Membership
    Materialize Planned Nodes
    Wait Until Cluster Converged
    Decommission Every Node Except    ${INIT}
    Decommission Should Be Refused    ${INIT}

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
