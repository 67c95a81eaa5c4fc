*** Settings ***
Documentation     The on-node gate for an existing roster (variables: ROSTER, ITERATIONS, ALLOW_DESTRUCTIVE),
...               as in the multinode fleet plan: per-node preconditions, then the lifecycle checks,
...               repeated ITERATIONS times. Destructive checks (plugin writes, which the plugin API cannot delete;
...               restart; partition) run only with ALLOW_DESTRUCTIVE.
...               `tribes-qa run --gate-per-node` runs one pabot process per roster node against ONE shared
...               fleet (see README, "Run a fleet in parallel"); plain robot runs every node in one process.

Resource          ../resources/tribes.resource
Resource          ../resources/gate.resource

Suite Setup       Start The Gate
Suite Teardown    Stop The Gate
Test Teardown     Heal Faults Injected By This Test

Test Tags         scenario:fleet_gate    cluster


*** Variables ***
${ITERATIONS}           1
${ALLOW_DESTRUCTIVE}    ${FALSE}


*** Test Cases ***
Roster Nodes Meet The Gate Preconditions
    [Tags]    req:GATE-2    req:GATE-3
    Gate Preconditions Hold On Every Gate Node

Lifecycle Checks Pass On Every Gate Node
    [Tags]    req:GATE-4    req:REF-3    req:REF-15    req:REF-16    req:ROLL-4
    Run The Gate Lifecycle Checks    ${ITERATIONS}

Plugin Writes Reach Their Plugin Peers On Every Gate Node
    [Tags]    destructive    req:GATE-4    req:GUARD-4
    Skip Unless Destructive Checks Are Allowed    ${ALLOW_DESTRUCTIVE}
    Run The Gate Plugin Write Checks    ${ITERATIONS}

Destructive Checks Pass On Every Gate Node
    [Tags]    destructive    req:GATE-5    req:GATE-6    req:GATE-7
    Skip Unless Destructive Checks Are Allowed    ${ALLOW_DESTRUCTIVE}
    Run The Destructive Gate Checks    ${ITERATIONS}

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
