"""Fixed probe sentences for checking a faster backend against the torch reference.

Written for this project (no respondent text); they span the lengths and topics of consultation
answers, including very short and very long ones, so padding and truncation are exercised.
"""

from __future__ import annotations

PROBE_SENTENCES: tuple[str, ...] = (
    "Yes.",
    "Affordable broadband.",
    "Capacity building for small island states.",
    "Meaningful connectivity should be measured by speed, affordability and skills, not only coverage.",
    "The multistakeholder model must remain the basis of Internet governance after 2025.",
    "We recommend that the Internet Governance Forum receives a permanent mandate and stable funding.",
    "Artificial intelligence raises new questions about accountability, transparency and human rights.",
    "Women and girls in rural areas still face the widest gaps in access to digital devices.",
    "Cybersecurity cooperation between computer emergency response teams should be strengthened.",
    "Open data and open standards help public administrations deliver better e-government services.",
    "Telemedicine expanded quickly during the pandemic but many clinics lack reliable electricity.",
    "Digital public infrastructure such as identity and payment systems must protect personal data.",
    "Small and medium enterprises need trusted e-commerce rules and cross-border payment options.",
    "Environmental impacts of data centres and electronic waste deserve attention in the review.",
    "Universities can contribute research, training and measurement of the information society.",
    "Indigenous languages are under-represented online; local content creation should be supported.",
    "The WSIS Action Lines remain relevant but should be aligned with the Sustainable Development Goals.",
    "Farmers benefit from mobile weather alerts and market price information.",
    "Media literacy helps citizens recognise disinformation and manipulated content.",
    "Persons with disabilities require accessible websites, assistive technologies and inclusive design.",
    "Financing mechanisms for last-mile connectivity remain insufficient in least developed countries.",
    "The Global Digital Compact and the WSIS process should reinforce each other rather than duplicate.",
    "No comment at this stage.",
    "See our written submission attached.",
    "Regulators should encourage infrastructure sharing, spectrum flexibility and community networks "
    "so that operators can reach sparsely populated areas at lower cost, while consumer protection, "
    "net neutrality and quality of service obligations ensure that users get fair and transparent "
    "offers. Public funding, universal service funds and blended finance can close the remaining gap "
    "where commercial deployment is not viable, provided that they are managed transparently, "
    "evaluated regularly against clear targets and open to small local providers as well as large "
    "national operators. Data on coverage and adoption should be published at a granular level so "
    "that civil society, researchers and local governments can hold all actors to account.",
    "Trust and security online, ethics of the information society, and international cooperation "
    "are cross-cutting themes that should be addressed together with development goals.",
    "Education systems must integrate digital skills from primary school onwards, train teachers, "
    "and provide devices and connectivity to learners who cannot afford them.",
    "E-health, e-learning, e-agriculture and e-science are application areas where evidence of impact "
    "should be collected systematically.",
    "ICT statistics and indicators need better disaggregation by gender, age, disability and location.",
    "The private sector is ready to invest if the regulatory environment is predictable and stable.",
    "Children's rights online should be protected without restricting their access to information.",
    "Digital transformation of government must put people first and leave no one behind.",
)
