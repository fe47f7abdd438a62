"""Chapter 5: deep generative models.

    autoencoder  dense and convolutional autoencoders; the linear one spans the PCA subspace
    vae          the variational autoencoder with TFP distributions: reparametrised sampling,
                 analytic KL, ELBO as rate + distortion, the importance-weighted bound
                 (`VAE` for model.fit, `VAETask` for the engine)
    gan          generator and discriminator (MLP, DCGAN), the minimax and non-saturating
                 losses, alternating updates (`GAN` for model.fit, `GANTask` for the engine),
                 the 2-D ring of Gaussians and its mode-collapse diagnostics
    fid          the Frechet distance on the features of the package's own classifier
    translation  pix2pix (U-Net G, PatchGAN D on pairs, adversarial + L1) and CycleGAN (two
                 of each, LSGAN, cycle and identity terms, instance norms) on the GAN's step;
                 their reports (held-out L1, classifier accuracy and domain rates, FID)
    autoregressive  what the autoregressive models share: exact log-likelihoods, ancestral
                 sampling from seeded noise, the training task, all 2^D binary images
    nade         NADE: shared-weight conditionals in O(DH) by a running activation
    made         MADE: masked dense layers from unit degrees, order- and connectivity-
                 agnostic training, the mixture over masks
    pixelcnn     PixelCNN (masked convolutions A/B, residual blocks) and Gated PixelCNN
                 (vertical and horizontal stacks), naive and fast samplers, receptive fields
    tcn          TCN: causal dilated 1-D convolutions in residual blocks, the receptive field
                 from the configuration (a chapter-4 sequence model: `train_rnn --cell=tcn`)
    wavenet      WaveNet: gated units, residual and skip connections, a softmax over values;
                 naive generation and the fast one with per-layer queues (chapter 4's
                 character language model: `train_rnn --cell=wavenet`)
    vrnn         VRNN (a VAE per step, learned prior, IWAE over trajectories) and the
                 class-conditional C-VRNN (content apart from the style latents)

TensorFlow Probability is imported by the functions that need it, not here.

Course: ch5 Deep Generative Models (5.1 VAE, 5.2 GAN, 5.3 Autoregressive models, 5.3.3 TCN,
VRNN, C-VRNN).
"""

from mp.generative import (
    autoencoder,
    autoregressive,
    fid,
    gan,
    made,
    nade,
    pixelcnn,
    tcn,
    translation,
    vae,
    vrnn,
    wavenet,
)
