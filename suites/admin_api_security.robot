*** Settings ***
Documentation     Black-box security of the node admin API (docs/contract.md, "NIP-98 authentication"):
...               every check of the NIP-98 header, the replay cache, the check order, and the u tag
...               bound to the node's own admin URL whatever the Host header says. Each test sends
...               read-only node.info requests that must be refused with 401 and the contract's code.

Resource          ../resources/tribes.resource
Resource          ../resources/security.resource

Suite Setup       Start The Target With Two Nodes To Probe
Suite Teardown    Clean Up The Target

Test Tags         scenario:admin_api_security    security


*** Test Cases ***
A Request Without Authorization Is Refused
    [Tags]    req:AUTH-1
    Management Request Should Be Refused    ${NODE}    no authorization

A Malformed Authorization Header Is Refused
    [Tags]    req:AUTH-2
    Management Request Should Be Refused    ${NODE}    malformed authorization

An Auth Event Of Another Kind Is Refused
    [Tags]    req:AUTH-3
    Management Request Should Be Refused    ${NODE}    wrong kind

An Auth Event With Content Is Refused
    [Tags]    req:AUTH-3
    Management Request Should Be Refused    ${NODE}    content

An Auth Event With A Bad Signature Is Refused
    [Tags]    req:AUTH-3
    Management Request Should Be Refused    ${NODE}    bad signature

An Auth Event Created Long Ago Is Refused As Stale
    [Tags]    req:AUTH-4
    Management Request Should Be Refused    ${NODE}    created long ago

An Auth Event Created In The Future Is Refused As Stale
    [Tags]    req:AUTH-4
    Management Request Should Be Refused    ${NODE}    created in the future

An Auth Event Signed For Another URL Is Refused
    [Tags]    req:AUTH-5
    Management Request Should Be Refused    ${NODE}    another url

An Auth Event Signed For Another Node Is Refused
    [Tags]    req:AUTH-5    req:AUTH-12
    Request Signed For Another Node Should Be Refused    ${OTHER_NODE}    ${NODE}

A Host Header Naming The Signed Node Does Not Make Another Node Accept Its Event
    [Tags]    req:AUTH-12
    Request Signed For Another Node Should Be Refused    ${OTHER_NODE}    ${NODE}    spoof_host=${TRUE}

An Auth Event And Host Header Naming An Arbitrary Host Are Refused
    [Tags]    req:AUTH-12
    Management Request Should Be Refused    ${NODE}    arbitrary host

An Auth Event Signed For Another Method Is Refused
    [Tags]    req:AUTH-6
    Management Request Should Be Refused    ${NODE}    another method

An Auth Event Signed For Another Body Is Refused
    [Tags]    req:AUTH-7
    Management Request Should Be Refused    ${NODE}    another body

An Auth Event From A Key Not On The Allowlist Is Refused
    [Tags]    req:AUTH-8
    Management Request Should Be Refused    ${NODE}    key not on the allowlist

A Replayed Auth Event Is Refused
    [Tags]    req:AUTH-9
    Replayed Management Request Should Be Refused    ${NODE}

A Refused Auth Event Does Not Enter The Replay Cache
    [Tags]    req:AUTH-10
    Refused Auth Event Should Not Enter The Replay Cache    ${NODE}

The First Failed Check Decides The Refusal
    [Tags]    req:AUTH-11
    Auth Checks Should Run In Contract Order    ${NODE}

The Suite History Holds Every Invariant
    [Documentation]    Everything the suite observed between its checkpoints, judged as a whole.
    [Tags]    req:HIST-1    req:HIST-2    req:HIST-3    req:HIST-4    req:HIST-5    req:HIST-6    req:HIST-7
    History Should Satisfy Invariants
