"""The same tree as Batch Compute jobs (the seed's JSON shape: job definitions, then array jobs
chained with dependsOn), and the way from there to Argo: render (build.py), validate against
botocore's Batch service model offline (model.py), submit in order with boto3 (submit.py), run
locally pod by pod (local.py), and convert a Batch file to an Argo Workflow (migrate.py)."""
