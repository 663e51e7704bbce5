import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')

# notebooks that only teach and export (foundations, fixtures, formats, the methods, the console script): no run, no
# parameters cell; their lessons use the embedded data or inputs they make
NOTEBOOKS_WITHOUT_RUN = {'00_core', '00a_scale', '00b_testing', '00c_shards', '00d_benchmarks', '00e_backbones', '00f_tasks', '00g_console', '01a_readers', '01b_imageops', '01c_dedup',
                         '01d_subsets', '02_data', '03a_dinov2', '03b_mae', '04a_monitor', '04b_metrics', '04c_features', '04d_table1', '07a_headless', '08a_learn', '09_cli'}
