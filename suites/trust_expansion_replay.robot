*** Settings ***
Documentation     Trust expansion replay: after Legion adds a node (or reactivates one), the node replays the
...               cluster's log until it holds the same singleton tribe and membership state as the rest.

Resource          ../resources/tribes.resource

Suite Setup       Start The Target For This Suite
Suite Teardown    Clean Up The Target
Test Setup        Skip If An Earlier Step Failed
Test Teardown     Heal Faults Injected By This Test

Test Tags         scenario:trust_expansion_replay    cluster    provider:hetzner    provider:ovh    destructive


*** Test Cases ***
A Newly Joined Node Catches Up To The Tribe And Membership
    [Tags]    req:REF-3    req:REF-9    req:REF-13
    ${init}=    A Cluster Initialised On Hetzner
    VAR    ${INIT}=    ${init}    scope=SUITE
    ${joined}=    Join An Ovh Node And Wait Until It Is Active Everywhere
    VAR    ${JOINED}=    ${joined}    scope=SUITE
    Wait Until Tribe Converged
    Every Active Node Agrees On Membership    ${INIT}:active    ${JOINED}:active

A Reactivated Node Catches Up After Missing Changes
    [Tags]    req:LEG-4    req:REF-3    req:REF-7    req:REF-14
    Decommission Node    ${JOINED}
    Node Should Be Archived As Decommissioned    ${JOINED}
    ${other}=    Join A Hetzner Node And Wait Until It Is Active Everywhere
    ${before}=    Get Current Time UTC
    Reactivate Node    ${JOINED}
    Wait Until Node Is Active Everywhere    ${JOINED}
    Activation Should Be Fresh    ${JOINED}    ${before}
    Wait Until Tribe Converged
    Every Active Node Agrees On Membership    ${INIT}:active    ${JOINED}:active    ${other}:active

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
