"Sphinx configuration of the compendium's site (`make docs`): the executed notebooks rendered by myst-nb."
project = 'biovfm'
author = 'the biovfm authors'
extensions = ['myst_nb']
nb_execution_mode = 'off'            # docs/build.py executed the notebooks (nbdev's skip flags honoured)
nb_output_stderr = 'remove'          # progress bars and warnings stay out of the pages
myst_enable_extensions = ['dollarmath', 'colon_fence']
exclude_patterns = ['_build', '**.ipynb_checkpoints']
html_theme = 'sphinx_book_theme'
html_title = 'biovfm — BioVFM-21M compendium'
html_theme_options = dict(repository_url='https://github.com/biovfm/biovfm', use_repository_button=False,
                          show_toc_level=2)
suppress_warnings = ['mystnb.unknown_mime_type', 'misc.highlighting_failure', 'myst.header']
html_favicon = 'favicon.png'                  # also keeps browsers from asking for a missing /favicon.ico
html_context = dict(default_mode='light')    # the theme's colour mode on a first visit (else a console error)
