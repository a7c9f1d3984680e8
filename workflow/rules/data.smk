localrules:
    download_corpus,
    corpus_stats,


rule download_corpus:
    # first: a network or checksum failure shows within seconds, not after hours of training
    priority: 100
    output:
        config["corpus"]["path"],
    params:
        urls=config["corpus"]["urls"],
        sha256=config["corpus"]["sha256"],
        retries=config["corpus"]["retries"],
        timeout=config["corpus"]["timeout"],
        backoff=config["corpus"]["backoff"],
    log:
        "logs/download_corpus.log",
    conda:
        ENV
    shell:
        "rnnrepro download --url {params.urls:q} --sha256 {params.sha256} --out {output:q}"
        " --retries {params.retries} --timeout {params.timeout} --backoff {params.backoff}"
        " > {log:q} 2>&1"


rule corpus_stats:
    """Corpus statistics; and the report's prompts checked against the corpus as soon as it
    is here, before any text run trains (a prompt character it lacks fails this job)."""

    # right after the download, before training jobs take the cores
    priority: 100
    input:
        config["corpus"]["path"],
    output:
        "results/tables/corpus_stats.json",
    params:
        prompts=config["report"]["prompts"],
    log:
        "logs/corpus_stats.log",
    conda:
        ENV
    shell:
        "rnnrepro corpus-stats --corpus {input:q} --prompt {params.prompts:q} --out {output:q}"
        " > {log:q} 2>&1"
