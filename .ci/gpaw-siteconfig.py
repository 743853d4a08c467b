compiler = 'g++'
fftw = True
scalapack = False
libraries += ['fftw3', 'openblas']
mpi = False
