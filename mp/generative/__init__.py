"""Chapter 5: deep generative models.

    autoencoder  dense and convolutional autoencoders; the linear one spans the PCA subspace
    vae          the variational autoencoder with TFP distributions: reparametrised sampling,
                 analytic KL, ELBO as rate + distortion, the importance-weighted bound
                 (`VAE` for model.fit, `VAETask` for the engine)
    gan          generator and discriminator (MLP, DCGAN), the minimax and non-saturating
                 losses, alternating updates (`GAN` for model.fit, `GANTask` for the engine),
                 the 2-D ring of Gaussians and its mode-collapse diagnostics
    fid          the Frechet distance on the features of the package's own classifier

TensorFlow Probability is imported by the functions that need it, not here.

Course: ch5 Deep Generative Models (5.1 VAE, 5.2 GAN).
"""

from mp.generative import autoencoder, fid, gan, vae
