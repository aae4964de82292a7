"""Synthetic consultation answers for the themes tests (text written for these tests, no real respondents)."""

from __future__ import annotations

import random

import pandas as pd

TOPICS: dict[str, list[str]] = {
    "connectivity": [
        "Rural villages still lack affordable broadband connections.",
        "Meaningful connectivity must reach remote and unconnected communities.",
        "Mobile data prices remain too high for poor households to get online.",
        "Investment in fibre backbones and towers is needed to close the access gap.",
        "Satellite links could bring the internet to isolated islands and mountain areas.",
        "Many schools and clinics in the countryside have no reliable internet access.",
        "Spectrum policy should favour cheaper coverage of underserved regions.",
        "Community networks help connect people where operators do not invest.",
    ],
    "privacy": [
        "Personal data must be protected by strong privacy laws.",
        "People should consent before companies collect their personal information.",
        "Mass surveillance of citizens threatens privacy and trust.",
        "Data protection authorities need powers to sanction misuse of personal data.",
        "Cross-border transfers of personal data require clear safeguards.",
        "Users deserve control over how platforms track and profile them.",
        "Health records and biometric data need the highest level of confidentiality.",
        "Privacy by design should be mandatory for new digital services.",
    ],
    "skills": [
        "Teachers need training to use digital tools in the classroom.",
        "Digital literacy programmes should reach older people and adults.",
        "Capacity building for civil servants is essential for digital policy.",
        "Young people need coding and digital skills for future jobs.",
        "Vocational courses on cybersecurity skills are in short supply.",
        "Libraries can offer free workshops on basic computer skills.",
        "Universities should update curricula with data science and digital competences.",
        "Online courses help workers retrain for the digital economy.",
    ],
}


def synthetic_answers(n_respondents: int = 36, seed: int = 7, questions: tuple[str, ...] = ("Q1", "Q2")
                      ) -> pd.DataFrame:
    """Canonical long table: each answer mixes 1-2 topics (the gold topics are kept in `gold`)."""
    rng = random.Random(seed)
    names = list(TOPICS)
    rows = []
    for r in range(n_respondents):
        for q in questions:
            k = 1 if rng.random() < 0.6 else 2
            topics = rng.sample(names, k)
            sents = []
            for t in topics:
                sents += rng.sample(TOPICS[t], 2)
            rows.append({"response_id": f"R{r:03d}", "question_id": q, "answer": " ".join(sents),
                         "gold": ";".join(sorted(topics))})
    return pd.DataFrame(rows)
