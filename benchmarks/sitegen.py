"""A large generated site for the benchmarks: site-info.def, YAIM-style static LDIF and a tag tree.

The ×1 site has 50 VOs, 10,000 global tags (one VO holding 4,000), 4
SubClusters with 500 tags of their own each, and 200 GlueCE entries (one per
queue). ``scale`` multiplies tags and CEs. Content is deterministic: the same
scale gives the same bytes.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path
from typing import List

VOS = 50
GLOBAL_TAGS = 10_000
BIG_VO_TAGS = 4_000
SUBCLUSTERS = 4
SUBCLUSTER_TAGS = 500
CES = 200
CE_HOST = "ce.bench.example.org"


@dataclass(frozen=True)
class Site:
    root: Path
    site_info: Path
    static_files: List[Path]
    info_dir: Path
    tag_count: int
    ce_count: int


def vo_names() -> List[str]:
    names = ["atlas", "cms", "lhcb", "alice", "t2k.org", "snoplus.snolab.ca"]
    names += [f"vo{n:02d}.example.org" for n in range(VOS - len(names))]
    return names


def tag(vo: str, n: int, rng: random.Random) -> str:
    """About 40 characters, in the shapes of real tags."""
    shape = n % 3
    if shape == 0:
        return f"VO-{vo}-production-{n // 100}.{n % 100}.{rng.randrange(10)}-x86_64-el9"
    if shape == 1:
        return f"VO-{vo}-CMSSW_{n // 1000}_{n % 1000 // 10}_{n % 10}_patch{rng.randrange(9)}"
    return f"VO-{vo}-sw-{n:06d}-gcc{rng.choice([11, 12, 13])}-opt"


def generate(root: Path, scale: int = 1) -> Site:
    rng = random.Random(20261122 + scale)
    vos = vo_names()
    info = root / "info"
    total = _write_global_tags(info, vos, GLOBAL_TAGS * scale, BIG_VO_TAGS * scale, rng)
    subclusters = [f"sc{n}.bench.example.org" for n in range(SUBCLUSTERS)]
    total += _write_subcluster_tags(info, vos, subclusters, SUBCLUSTER_TAGS * scale, rng)
    queues = [f"q{n:04d}" for n in range(CES * scale)]
    site_info = root / "site-info.def"
    site_info.write_text(_site_info(vos, queues))
    static = root / "static"
    static.mkdir(parents=True, exist_ok=True)
    ce_file = static / "static-file-CE.ldif"
    ce_file.write_text(_static_ces(queues, vos))
    cluster_file = static / "static-file-Cluster.ldif"
    cluster_file.write_text(_static_cluster(subclusters))
    return Site(root, site_info, [ce_file, cluster_file], info, total, len(queues))


def _write_global_tags(info: Path, vos: List[str], total: int, big: int, rng: random.Random) -> int:
    rest = total - big
    per_vo = [big] + [rest // (len(vos) - 1) + (1 if i < rest % (len(vos) - 1) else 0) for i in range(len(vos) - 1)]
    for vo, count in zip(vos, per_vo):
        folder = info / vo
        folder.mkdir(parents=True, exist_ok=True)
        tags = sorted({tag(vo, n, rng) for n in range(count)})
        (folder / f"{vo}.ldif").write_text("".join(t + "\n" for t in tags))
    return total


def _write_subcluster_tags(info: Path, vos: List[str], subclusters: List[str], count: int, rng: random.Random) -> int:
    for sc in subclusters:
        for vo in vos[:5]:
            folder = info / sc / vo
            folder.mkdir(parents=True, exist_ok=True)
            tags = sorted({f"VO-{vo}-{sc.split('.')[0]}-local-{n:05d}-{rng.randrange(10**6):06d}" for n in range(count // 5)})
            (folder / f"{vo}.ldif").write_text("".join(t + "\n" for t in tags))
    return count * len(subclusters)


def _site_info(vos: List[str], queues: List[str]) -> str:
    lines = [
        "SITE_NAME=BENCH-SITE",
        f"CE_HOST={CE_HOST}",
        f'VOS="{" ".join(vos)}"',
        f'QUEUES="{" ".join(queues)}"',
        "CE_BATCH_SYS=slurm",
        'CE_RUNTIMEENV="GLITE-3_2_0 R-GMA"',
        "CE_STATE=PilotSCAS",
        "CE_CPU_MODEL=EPYC",
        "CE_CPU_VENDOR=AMD",
        "CE_CPU_SPEED=2450",
        "CE_OS=AlmaLinux",
        "CE_OS_RELEASE=9.4",
        "CE_OS_VERSION=Seafoam",
        "CE_OS_ARCH=x86_64",
        "CE_MINPHYSMEM=262144",
        "CE_MINVIRTMEM=524288",
        "CE_PHYSCPU=128",
        "CE_LOGCPU=256",
        "CE_SMPSIZE=128",
        "CE_SI00=3000",
        "CE_SF00=3000",
        "CE_OUTBOUNDIP=TRUE",
        "CE_INBOUNDIP=FALSE",
        'CE_CAPABILITY="CPUScalingReferenceSI00=3000"',
        'CE_OTHERDESCR="Cores=128,Benchmark=30-HEP-SPEC06"',
    ]
    for queue in queues:
        lines.append(f'{queue.upper()}_GROUP_ENABLE="{vos[int(queue[1:]) % len(vos)]}"')
    return "\n".join(lines) + "\n"


def _static_ces(queues: List[str], vos: List[str]) -> str:
    entries = []
    for n, queue in enumerate(queues):
        ce_id = f"{CE_HOST}:8443/cream-slurm-{queue}"
        vo = vos[n % len(vos)]
        state = "Draining" if n % 10 == 9 else "Production"
        entries.append(
            f"dn: GlueCEUniqueID={ce_id},mds-vo-name=resource,o=grid\n"
            "objectClass: GlueCETop\nobjectClass: GlueCE\nobjectClass: GlueCEAccessControlBase\n"
            "objectClass: GlueCEInfo\nobjectClass: GlueCEPolicy\nobjectClass: GlueCEState\n"
            "objectClass: GlueInformationService\nobjectClass: GlueKey\nobjectClass: GlueSchemaVersion\n"
            f"GlueCEUniqueID: {ce_id}\nGlueCEHostingCluster: {CE_HOST}\nGlueCEName: {queue}\n"
            f"GlueCEInfoHostName: {CE_HOST}\nGlueCEInfoGatekeeperPort: 8443\n"
            f"GlueCEInfoContactString: https://{CE_HOST}:8443/ce-cream/services\n"
            "GlueCEInfoJobManager: slurm\nGlueCEInfoLRMSType: slurm\nGlueCEInfoLRMSVersion: 23.02\n"
            "GlueCEInfoTotalCPUs: 0\nGlueCEStateEstimatedResponseTime: 2146660842\n"
            "GlueCEStateFreeCPUs: 0\nGlueCEStateRunningJobs: 0\n"
            f"GlueCEStateStatus: {state}\nGlueCEStateTotalJobs: 0\nGlueCEStateWaitingJobs: 444444\n"
            "GlueCEStateWorstResponseTime: 2146660842\nGlueCEStateFreeJobSlots: 0\n"
            "GlueCEPolicyMaxCPUTime: 999999999\nGlueCEPolicyMaxRunningJobs: 999999999\n"
            "GlueCEPolicyMaxTotalJobs: 999999999\nGlueCEPolicyMaxWallClockTime: 999999999\n"
            "GlueCEPolicyPriority: 1\nGlueCEPolicyAssignedJobSlots: 0\nGlueCEPolicyPreemption: 0\n"
            f"GlueCEAccessControlBaseRule: VO:{vo}\nGlueCEImplementationName: CREAM\n"
            "GlueCEImplementationVersion: 1.16.7\nGlueForeignKey: GlueClusterUniqueID=" + CE_HOST + "\n"
            "GlueInformationServiceURL: ldap://" + CE_HOST + ":2170/mds-vo-name=resource,o=grid\n"
            "GlueSchemaVersionMajor: 1\nGlueSchemaVersionMinor: 3\n"
        )
    return "\n".join(entries)


def _static_cluster(subclusters: List[str]) -> str:
    entries = [
        f"dn: GlueClusterUniqueID={CE_HOST},mds-vo-name=resource,o=grid\n"
        "objectClass: GlueClusterTop\nobjectClass: GlueCluster\nobjectClass: GlueInformationService\n"
        "objectClass: GlueKey\nobjectClass: GlueSchemaVersion\n"
        f"GlueClusterName: {CE_HOST}\nGlueClusterUniqueID: {CE_HOST}\n"
        "GlueForeignKey: GlueSiteUniqueID=BENCH-SITE\n"
        "GlueSchemaVersionMajor: 1\nGlueSchemaVersionMinor: 3\n"
    ]
    for sc in subclusters:
        entries.append(
            f"dn: GlueSubClusterUniqueID={sc},GlueClusterUniqueID={CE_HOST},mds-vo-name=resource,o=grid\n"
            "objectClass: GlueClusterTop\nobjectClass: GlueSubCluster\nobjectClass: GlueHostApplicationSoftware\n"
            "objectClass: GlueHostArchitecture\nobjectClass: GlueHostBenchmark\nobjectClass: GlueHostMainMemory\n"
            "objectClass: GlueHostNetworkAdapter\nobjectClass: GlueHostOperatingSystem\n"
            "objectClass: GlueHostProcessor\nobjectClass: GlueInformationService\nobjectClass: GlueKey\n"
            "objectClass: GlueSchemaVersion\n"
            f"GlueSubClusterUniqueID: {sc}\nGlueSubClusterName: {sc}\n"
            "GlueHostApplicationSoftwareRunTimeEnvironment: GLITE-3_2_0\n"
            "GlueHostApplicationSoftwareRunTimeEnvironment: R-GMA\n"
            "GlueHostArchitecturePlatformType: x86_64\nGlueHostArchitectureSMPSize: 128\n"
            "GlueHostBenchmarkSF00: 3000\nGlueHostBenchmarkSI00: 3000\n"
            "GlueHostMainMemoryRAMSize: 262144\nGlueHostMainMemoryVirtualSize: 524288\n"
            "GlueHostNetworkAdapterInboundIP: FALSE\nGlueHostNetworkAdapterOutboundIP: TRUE\n"
            "GlueHostOperatingSystemName: AlmaLinux\nGlueHostOperatingSystemRelease: 9.4\n"
            "GlueHostOperatingSystemVersion: Seafoam\nGlueHostProcessorClockSpeed: 2450\n"
            "GlueHostProcessorModel: EPYC\nGlueHostProcessorVendor: AMD\n"
            f"GlueChunkKey: GlueClusterUniqueID={CE_HOST}\nGlueSchemaVersionMajor: 1\nGlueSchemaVersionMinor: 3\n"
        )
    return "\n".join(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args()
    site = generate(args.root, args.scale)
    print(f"{site.root}: {site.tag_count} tags, {site.ce_count} CEs")


if __name__ == "__main__":
    main()
