*** Settings ***
Documentation     One node: roll the supertest plugin out as a new system generation, use its API,
...               roll back to the baseline generation, and clean up (from the rollout progress notes).

Resource          ../resources/tribes.resource

Suite Setup       Start The Target For This Suite
Suite Teardown    Clean Up The Target
Test Setup        Skip If An Earlier Step Failed
Test Teardown     Heal Faults Injected By This Test

Test Tags         scenario:single_node_plugin_rollout_rollback    single-node    provider:hetzner    destructive


*** Test Cases ***
A Fresh Node Runs Its Baseline Generation
    [Tags]    req:PLUG-1    req:ROLL-4
    ${init}=    Provision Init Node    hetzner
    VAR    ${NODE}=    ${init.name}    scope=SUITE
    ${baseline}=    The Node Runs Its Baseline Generation    ${NODE}
    VAR    ${BASELINE}=    ${baseline}    scope=SUITE
    Plugin API Should Be Absent    ${NODE}

Preview Shows The Plugin With Its Substitutes Available
    [Tags]    req:ROLL-3    req:ROLL-8    req:ROLL-10
    Rollout Preview Should Install Plugin    ${NODE}    ${PLUGIN}    ${COMMIT}

Rollout Moves Selected And Running To The Plugin Generation
    [Tags]    req:ROLL-3    req:ROLL-4    req:ROLL-10    req:ROLL-19
    Roll Out Plugin To Nodes    ${PLUGIN}    ${COMMIT}    ${NODE}
    Generation Links Should Match API    ${NODE}
    Node Should Run A Generation With Plugin    ${NODE}    ${PLUGIN}    baseline=${BASELINE}

The Plugin API Serves Health, Schema, Writes And Reads
    [Tags]    req:PLUG-2    req:ROLL-19
    The Plugin Is Installed And Serving On    ${NODE}
    ${run}=    New Run Id
    ${case}=    Create Case    ${NODE}    ${run}    smoke case
    Increment Case    ${NODE}    ${case.id}    2
    Create Event    ${NODE}    ${run}    ${case.id}    created
    Plugin State Should Hold    ${NODE}    ${run}    cases=1    events=1    counter=2

Rollback Returns To The Baseline And Removes The Plugin Tables
    [Tags]    req:PLUG-1    req:ROLL-4    req:ROLL-6    req:ROLL-23    req:ROLL-24    req:ROLL-25
    Roll Back Nodes To Generation    ${BASELINE}    ${NODE}
    Generation Should Be Converged    ${NODE}    ${BASELINE}
    Generation Links Should Match API    ${NODE}
    The Plugin Is Gone From    ${NODE}

A Restart After Rollback Keeps The Baseline And Replays No Rollout
    [Tags]    req:ROLL-7    req:ROLL-24
    Restart Node    ${NODE}
    Generation Should Stay At    ${NODE}    ${BASELINE}
    The Plugin Is Gone From    ${NODE}

A Rollback Interrupted By A Restart Of Its Node Still Finishes
    [Tags]    req:ROLL-6    req:ROLL-27
    ${job}=    Roll Back To Generation    ${NODE}    ${BASELINE}
    Restart Node    ${NODE}
    Wait For Rollout    ${NODE}    ${job}
    Generation Should Be Converged    ${NODE}    ${BASELINE}

Destroying The Node Leaves Legion Empty
    Destroy Node    ${NODE}
    Legion Node List Should Be Empty

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
