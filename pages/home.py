"""Home: what a deep ensemble is, the four strategies, the uncertainty split, where to go next."""

import streamlit as st

from dashboard import chrome, routing

routing.route_through_app()  # a deep link on a fresh server goes through app.py

st.title("Deep Ensemble Lab")
st.markdown(
    "##### Train several neural networks, combine them, and watch them tell you *when they do not know*."
)
st.write(
    "A **deep ensemble** is a handful of networks trained on the same task in slightly different ways. "
    "Where the data are plentiful they agree; away from the data they disagree — and that disagreement "
    "is a practical, well-calibrated measure of uncertainty (Lakshminarayanan et al., 2017)."
)

steps = st.columns(3)
for col, (page, title, icon, text) in zip(steps, [
    ("pages/data.py", "1 · Pick data", ":material/dataset:",
     "A toy curve, a real data set, or your own CSV."),
    ("pages/train.py", "2 · Train live", ":material/model_training:",
     "Choose members and strategy; watch every member learn."),
    ("pages/uncertainty.py", "3 · Explore uncertainty", ":material/ssid_chart:",
     "Bands that widen away from the data, calibration, members vs ensemble."),
]):
    with col.container(border=True):
        st.markdown(f"**{title}**")
        st.caption(text)
        chrome.link(page, f"Go to {page.split('/')[1][:-3].capitalize()}", icon)

st.subheader("Four ways to build an ensemble", divider="gray")
STRATEGIES = [
    ("Independent seeds", ":material/shuffle:",
     "Train M copies of the same network from different random initialisations and data orders, "
     "then average their predictions. Simple, embarrassingly parallel, and surprisingly strong.",
     r"p(y \mid x) = \frac{1}{M} \sum_{m=1}^{M} p_{\theta_m}(y \mid x)"),
    ("Gaussian-NLL members", ":material/stacked_line_chart:",
     "For regression each member predicts a mean **and** a variance, trained with the Gaussian "
     "negative log-likelihood, so it can say how noisy the data are at every input.",
     r"-\log p_\theta(y \mid x) = \tfrac{1}{2}\log \sigma^2_\theta(x) "
     r"+ \frac{(y - \mu_\theta(x))^2}{2\,\sigma^2_\theta(x)} + \text{const}"),
    ("Snapshot ensembles", ":material/photo_camera:",
     "One training run with a cyclic cosine learning rate: it restarts high, settles into a "
     "minimum, and a snapshot of the weights is kept at the end of every cycle (Huang et al., 2017).",
     r"\alpha(t) = \frac{\alpha_0}{2}\left(\cos\!\left(\frac{\pi \,((t-1) \bmod \lceil T/M \rceil)}"
     r"{\lceil T/M \rceil}\right) + 1\right)"),
    ("Bootstrapping", ":material/auto_awesome_motion:",
     "Each member sees its own resample of the training set — N rows drawn with replacement — so "
     "the members also disagree about which points they have seen.",
     r"\mathcal{D}_m = \{(x_{i}, y_{i}) : i \sim \mathrm{Uniform}\{1,\dots,N\}\},\ |\mathcal{D}_m| = N"),
]
for row in (STRATEGIES[:2], STRATEGIES[2:]):
    for col, (name, icon, text, formula) in zip(st.columns(2), row):
        with col.container(border=True):
            st.markdown(f"#### {icon} {name}")
            st.write(text)
            st.latex(formula)

st.subheader("Two kinds of uncertainty", divider="gray")
left, right = st.columns([3, 2], vertical_alignment="center")
with left:
    st.write("The ensemble is a mixture of the members' Gaussians. Its variance splits exactly into the "
             "noise the members expect (**aleatoric**) and their disagreement (**epistemic**):")
    st.latex(r"\sigma_*^2(x) = \underbrace{\frac{1}{M}\sum_m \sigma_m^2(x)}_{\text{aleatoric}}"
             r" + \underbrace{\frac{1}{M}\sum_m \big(\mu_m(x) - \mu_*(x)\big)^2}_{\text{epistemic}},"
             r"\qquad \mu_*(x) = \frac{1}{M}\sum_m \mu_m(x)")
    st.write("For classification the same split holds for entropy: total = expected member entropy "
             "(aleatoric) + mutual information (epistemic).")
with right:
    with st.container(border=True):
        st.markdown("**Aleatoric** — noise in the data itself. More data does not remove it.")
        st.markdown("**Epistemic** — what the model has not learnt yet. It shrinks with data and "
                    "grows away from it; this is what tells you *I have not seen this before*.")

st.subheader("Where next", divider="gray")
nxt = st.columns(3)
with nxt[0]:
    chrome.link("pages/data.py", "Choose or upload data", ":material/dataset:")
with nxt[1]:
    chrome.link("pages/train.py", "Train the cubic toy with 5 members", ":material/play_circle:")
with nxt[2]:
    chrome.link("pages/uncertainty.py", "See the uncertainty of your last run", ":material/ssid_chart:")
st.caption("Lakshminarayanan, Pritzel & Blundell (2017), *Simple and Scalable Predictive Uncertainty "
           "Estimation using Deep Ensembles*. Huang et al. (2017), *Snapshot Ensembles: Train 1, get M for free*.")
