import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')

# notebooks that only teach and export (fixtures, file formats, the console script): no run, no parameters cell
NOTEBOOKS_WITHOUT_RUN = {'00b_testing', '00c_shards', '09_cli'}
