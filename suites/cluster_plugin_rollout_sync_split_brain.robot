*** Settings ***
Documentation     The clustered split-brain scenario from the rollout progress notes: one init and two joins
...               materialized in one Legion graph run; control plane converged before any plugin write;
...               supertest rolled out everywhere; bidirectional table sync; a node cut from the sync mesh,
...               writes on both sides, heal, full resync, every write everywhere; rollback on every node.

Resource          ../resources/tribes.resource

Suite Setup       Start The Target For This Suite
Suite Teardown    Clean Up The Target
Test Setup        Skip If An Earlier Step Failed
Test Teardown     Heal Faults Injected By This Test

Test Tags    scenario:cluster_plugin_rollout_sync_split_brain
...          cluster
...          provider:hetzner
...          provider:scaleway
...          provider:ovh
...          destructive


*** Test Cases ***
Three Nodes Join In One Graph Run And The Control Plane Converges
    [Tags]    req:ROLL-4    req:ROLL-12    req:ROLL-15    req:ROLL-16    req:ROLL-17    req:ROLL-18
    ${init}=    A Cluster Initialised On Hetzner
    ${joined}=    Join Nodes In One Graph Run    scaleway    ovh
    VAR    ${A}=    ${init}    scope=SUITE
    VAR    ${B}=    ${joined}[0]    scope=SUITE
    VAR    ${C}=    ${joined}[1]    scope=SUITE
    Every Active Node Agrees On Membership    ${A}:active    ${B}:active    ${C}:active
    Control Plane Has Converged
    Sync Endpoints Match Transport Addresses And Are Reachable
    ${baseline}=    The Node Runs Its Baseline Generation    ${A}
    VAR    ${BASELINE}=    ${baseline}    scope=SUITE

Supertest Rolls Out To Every Node
    [Tags]    req:ROLL-10    req:ROLL-19
    Roll Out ${PLUGIN} At ${COMMIT} To Every Active Node
    The Plugin Is Installed And Serving On    ${A}    ${B}    ${C}

Plugin Tables Sync Both Ways
    [Tags]    req:ROLL-20    req:ROLL-21    req:ROLL-22
    ${run}=    New Run Id
    VAR    ${RUN}=    ${run}    scope=SUITE
    ${case}=    Create Case    ${A}    ${RUN}    created on A
    VAR    ${CASE}=    ${case.id}    scope=SUITE
    Wait Until Case Is Visible On Node    ${B}    ${RUN}    ${CASE}
    ${event}=    Create Event    ${B}    ${RUN}    ${CASE}    seen-on-b
    Wait Until Event Is Visible On Node    ${A}    ${RUN}    ${event.id}
    Increment Case    ${B}    ${CASE}    3
    Wait Until Case Is Visible On Node    ${A}    ${RUN}    ${CASE}    counter=3
    Wait Until Plugin State Converged    ${RUN}

A Partitioned Node Stays Stale While Both Sides Write
    [Tags]    req:ROLL-13
    Partition Node From Peers    ${C}
    Node Should Be Cut From The Sync Mesh    ${C}
    ${on_majority}=    Create Case    ${A}    ${RUN}    written on the majority side
    ${on_minority}=    Create Case    ${C}    ${RUN}    written on the partitioned side
    Increment Case    ${A}    ${CASE}    1
    Increment Case    ${C}    ${CASE}    10
    VAR    ${MAJORITY_CASE}=    ${on_majority.id}    scope=SUITE
    VAR    ${MINORITY_CASE}=    ${on_minority.id}    scope=SUITE
    Node Should Stay Stale For    ${C}    ${RUN}    ${MAJORITY_CASE}
    Node Should Stay Stale For    ${A}    ${RUN}    ${MINORITY_CASE}

After Heal And Full Resync Every Write Is Everywhere
    [Tags]    req:PLUG-3    req:ROLL-14
    Heal All Partitions
    Force Full Resync On Nodes
    Wait Until Plugin State Converged    ${RUN}    expected_cases=3    expected_events=1
    Wait Until Case Is Visible On Node    ${A}    ${RUN}    ${MINORITY_CASE}
    Wait Until Case Is Visible On Node    ${C}    ${RUN}    ${MAJORITY_CASE}
    Wait Until Case Is Visible On Node    ${A}    ${RUN}    ${CASE}    counter=14
    Wait Until Case Is Visible On Node    ${C}    ${RUN}    ${CASE}    counter=14
    Control Plane Has Converged

Rolling Back Every Node Removes The Plugin And Keeps The Cluster Healthy
    [Tags]    req:ROLL-6    req:ROLL-23    req:ROLL-24    req:ROLL-25    req:ROLL-26
    Roll Every Active Node Back To ${BASELINE}
    The Plugin Is Gone From    ${A}    ${B}    ${C}
    Cluster Status Should Be Healthy On Nodes

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
