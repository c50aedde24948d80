"""The plan of a run: which jobs, paths and panels an experiment implies, as pure functions of it.

paths      every path template of the DAG, each written once
jobs       the config one job receives (its stage's section, the data sections it reads, its own keys)
pretrain   BERT runs of Fig 1a, Fig 3 and Table 2, their tuning
squad      Table 3's fine-tuning jobs
vision     ResNet and AlexNet runs
noise      noise measurements, their job groups and the panel each feeds
artifacts  the paper's artifacts of the experiment, the report's inputs, the data each target reads

The workflow (workflow/rules/*.smk) holds rules only and asks this package for everything else. Torch-free:
it is imported when the Snakefile is parsed.
"""
