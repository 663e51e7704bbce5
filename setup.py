"Packaging for biovfm: everything comes from settings.ini (nbdev 2 convention)."
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
docs_requirements = shlex.split(cfg.get('docs_requirements', ''))

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    author=cfg['author'], author_email=cfg['author_email'], keywords=cfg['keywords'],
    license='Apache-2.0', url=cfg['git_url'],
    classifiers=['Programming Language :: Python :: 3', 'Intended Audience :: Science/Research',
                 'Topic :: Scientific/Engineering :: Medical Science Apps.'],
    packages=setuptools.find_packages(include=['biovfm', 'biovfm.*']),
    include_package_data=True,
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'docs': docs_requirements},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
                  # `papermill headless:nbs/03_pretrain.ipynb OUT -p ...`: a stage's run without its lessons
                  'papermill.io': ['headless:=biovfm.headless:HeadlessHandler']},
)
