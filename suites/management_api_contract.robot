*** Settings ***
Documentation     The management API as the contract states it (docs/contract.md §1-2), provoked from outside on
...               one node: every error code a caller can cause answers its HTTP status in the contract envelope,
...               every method's result parses against its contract model, /healthz answers ok. Each test stands
...               alone: it leaves the node on its baseline generation. Destructive: it provisions a node and
...               rolls it out and back.

Resource          ../resources/tribes.resource

Suite Setup       Start The Target With One Node
Suite Teardown    Clean Up The Target
Test Teardown     Heal Faults Injected By This Test

Test Tags         scenario:management_api_contract    single-node    provider:hetzner    destructive


*** Variables ***
${NOT_A_PLUGIN}    not-a-plugin


*** Test Cases ***
The Health Endpoint Answers Ok
    [Tags]    req:API-10
    Health Endpoint Should Answer Ok    ${NODE}

Every Read Method Answers In Its Contract Shape
    [Tags]    req:API-9
    Management Method Should Answer In Contract Shape    ${NODE}    node.info
    Management Method Should Answer In Contract Shape    ${NODE}    cluster_nodes.list
    Management Method Should Answer In Contract Shape    ${NODE}    cluster_status
    Management Method Should Answer In Contract Shape    ${NODE}    sync.status
    Management Method Should Answer In Contract Shape    ${NODE}    tribe.status
    Management Method Should Answer In Contract Shape    ${NODE}    generation.status
    Management Method Should Answer In Contract Shape    ${NODE}    plugins.list
    Management Method Should Answer In Contract Shape    ${NODE}    diagnostics

Every Job Method Answers In Its Contract Shape
    [Tags]    req:API-9
    ${preview}=    Preview Rollout    ${NODE}    ${PLUGIN}    ${COMMIT}
    ${job}=    Start Rollout    ${NODE}    ${preview.plan_id}
    Get Rollout Job    ${NODE}    ${job}
    Wait For Rollout    ${NODE}    ${job}
    The Node Is Back On Its Baseline    ${NODE}    ${BASELINE}
    Force Full Resync    ${NODE}

A Body That Is Not An Envelope Is Refused As Invalid Payload
    [Tags]    req:API-1
    Management Body Should Be Refused    ${NODE}    not json    invalid-payload
    Management Body Should Be Refused    ${NODE}    {"params": {}}    invalid-payload
    Management Body Should Be Refused    ${NODE}    ["node.info"]    invalid-payload

An Unknown Method Is Refused
    [Tags]    req:API-2
    Management Call Should Be Refused    ${NODE}    cluster.explode    unknown-method

Params That Do Not Fit The Method Are Refused As Invalid Params
    [Tags]    req:API-3
    Management Body Should Be Refused    ${NODE}    {"method": "node.info", "params": [1]}    invalid-params
    Management Call Should Be Refused    ${NODE}    rollout.status    invalid-params    params=${{{"job_id": 7}}}
    Management Call Should Be Refused    ${NODE}    rollout.preview    invalid-params
    ...    params=${{{"plugins": "supertest"}}}

A Job Id The Node Never Issued Is Refused
    [Tags]    req:API-6
    Management Call Should Be Refused    ${NODE}    rollout.status    unknown-job
    ...    params=${{{"job_id": "rollout-that-never-was"}}}

A Plan Id The Node Never Issued Is Refused
    [Tags]    req:API-7
    Management Call Should Be Refused    ${NODE}    rollout.start    unknown-plan
    ...    params=${{{"plan_id": "plan-that-never-was"}}}

A Generation The Node Does Not Have Is Refused
    [Tags]    req:API-8
    Management Call Should Be Refused    ${NODE}    generation.rollback    unknown-generation
    ...    params=${{{"generation": 99}}}

A Rollout With Missing Substitutes Is Refused And Switches Nothing
    [Tags]    req:API-4
    ${preview}=    Preview Rollout    ${NODE}    ${NOT_A_PLUGIN}    ${COMMIT}
    Management Call Should Be Refused    ${NODE}    rollout.start    substitutes-missing
    ...    params=${{{"plan_id": $preview.plan_id}}}
    Generation Should Be Converged    ${NODE}    ${BASELINE}

A Preview Reports The Substitutes Its Plan Is Missing
    [Tags]    req:ROLL-10
    ${preview}=    Preview Rollout    ${NODE}    ${NOT_A_PLUGIN}    ${COMMIT}
    Preview Should Report Missing Substitutes    ${NODE}    ${preview}    tribes-plugin-${NOT_A_PLUGIN}

A Second Job While One Runs Is Refused
    [Tags]    req:API-5
    ${first}=    Preview Rollout    ${NODE}    ${PLUGIN}    ${COMMIT}
    ${second}=    Preview Rollout    ${NODE}    ${PLUGIN}    ${COMMIT}
    ${job}=    Start Rollout    ${NODE}    ${first.plan_id}
    Management Call Should Be Refused    ${NODE}    rollout.start    rollout-in-progress
    ...    params=${{{"plan_id": $second.plan_id}}}
    Management Call Should Be Refused    ${NODE}    generation.rollback    rollout-in-progress
    ...    params=${{{"generation": 1}}}
    Wait For Rollout    ${NODE}    ${job}
    The Node Is Back On Its Baseline    ${NODE}    ${BASELINE}

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
